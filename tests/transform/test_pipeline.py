"""The pipeline: fingerprints identify code, the cache skips recompiling, readable output."""

from __future__ import annotations

import subprocess
import sys

from durable import transform_to_durable_ast
from durable.transform.pipeline import compile_source

SOURCE = "async def f(x):\n    raise PauseForEventException('e')\n    return x\n"


def test_fingerprint_ignores_formatting_and_comments():
    reformatted = "async def f(x):  # note\n\n    raise PauseForEventException( 'e' )\n    return x\n"
    assert compile_source(SOURCE).fingerprint == compile_source(reformatted).fingerprint


def test_fingerprint_changes_when_code_changes():
    changed = SOURCE.replace("return x", "return x + 1")
    assert compile_source(SOURCE).fingerprint != compile_source(changed).fingerprint


def test_compiling_the_same_source_again_hits_the_cache():
    assert compile_source(SOURCE) is compile_source(SOURCE)


def test_transform_to_durable_ast_accepts_source_text():
    code = transform_to_durable_ast(SOURCE).code
    assert code.startswith("async def f(_durable_f):")
    compile(code, "<check>", "exec")


def test_python_m_durable_transform_prints_compiled_source(tmp_path):
    (tmp_path / "flow_module.py").write_text(
        "from durable import PauseForEventException\n\n" + SOURCE
    )
    result = subprocess.run(
        [sys.executable, "-m", "durable.transform", "flow_module:f"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "_durable_f.pause('e')" in result.stdout
