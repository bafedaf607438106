"""The pipeline: fingerprints identify code, the cache skips recompiling, readable output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from durable import transform_to_durable_ast
from durable.transform.pipeline import compile_source, dedent_source

SOURCE = "async def f(x):\n    raise PauseForEventException('e')\n    return x\n"


def test_fingerprint_ignores_formatting_and_comments():
    reformatted = (
        "async def f(x):  # note\n\n    raise PauseForEventException( 'e' )\n    return x\n"
    )
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


@pytest.mark.slow
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


def test_a_bare_except_whose_handler_holds_a_checkpoint_compiles():
    source = (
        "async def f(x):\n"
        "    try:\n"
        "        x = 1 / x\n"
        "    except:\n"
        "        raise PauseForEventException('after-failure')\n"
        "        raise\n"
        "    return x\n"
    )
    compiled = compile_source(source, qualname="f").emitted.source
    assert "except BaseException as" in compiled


def test_an_internal_fault_of_the_compiler_is_a_compile_error_naming_file_line_and_durable(
    monkeypatch,
):
    from durable import DurableCompileError
    from durable.transform import pipeline

    def broken(self, *args):
        raise KeyError("a node the pass did not expect")

    monkeypatch.setattr(pipeline.LowerPass, "run", broken)
    with pytest.raises(DurableCompileError) as raised:
        source = "async def f2(y):\n    raise PauseForEventException('e2')\n    return y\n"
        compile_source(source, filename="flow.py", first_line=7, qualname="f2")
    message = str(raised.value)
    assert "flow.py:7:1: DUR000 internal error of durable's compiler (KeyError" in message
    assert "this is a bug in durable, not in your code" in message
    assert isinstance(raised.value.__cause__, KeyError)


def test_source_of_an_indented_function_keeps_the_text_of_its_multiline_strings():
    lines = [
        "    async def render(self):\n",
        '        a = """x\n',
        "col0\n",
        '        kept"""\n',
        "\n",
        "  # a comment left of the method\n",
        "        return a\n",
    ]
    source = dedent_source(lines)
    assert source.splitlines()[0] == "async def render(self):"
    namespace: dict = {}
    exec(compile(source.replace("async def", "def"), "<s>", "exec"), namespace)
    assert namespace["render"](None) == "x\ncol0\n        kept"
