"""The public API is typed: `mypy --strict` accepts the examples and the typing checks, and
pyright finds the package's exported types (nearly) complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Checked by `mypy --strict`. examples/quickstart.py is left out: it stays verbatim as
#: DESIGN.md prints it (unannotated functions, the untyped keyword call form).
STRICT_FILES = [
    "examples/approval.py",
    "examples/order_pipeline.py",
    "tests/typecheck/check_public_api.py",
]
#: The least share of the exported symbols whose type pyright knows.
COMPLETENESS = 95.0


def _tool(name: str) -> str:
    command = shutil.which(name, path=str(Path(sys.executable).parent))
    assert command, f"{name} is missing: install the test extra (pip install -e '.[test]')"
    return command


def _mypy_strict(root: Path, files: list[str]) -> subprocess.CompletedProcess[str]:
    # The package is found as source (MYPYPATH: an editable install is an import hook mypy
    # cannot follow) and read as a user's checker reads an installed one: its own
    # modules' errors are not reported, only what the checked files get from it.
    return subprocess.run(
        [_tool("mypy"), "--strict", "--follow-imports=silent", "--no-incremental", *files],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "MYPYPATH": str(root)},
    )


def _verifytypes(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("pyright"), "--pythonpath", sys.executable, "--verifytypes", "durable",
         "--ignoreexternal"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip


def _score(output: str) -> float:
    found = re.search(r"Type completeness score: ([\d.]+)%", output)
    assert found, f"pyright printed no completeness score:\n{output}"
    return float(found.group(1))


@pytest.mark.slow
def test_mypy_strict_accepts_the_examples_and_the_typing_checks():
    result = _mypy_strict(ROOT, STRICT_FILES)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_strict_rejects_a_wrong_return_type_of_a_durable_function(tmp_path):
    # The check above can fail: the same checks over a durable function whose declared
    # return type no longer matches what they assert.
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "durable", copy / "durable")
    checks = (ROOT / "tests/typecheck/check_public_api.py").read_text()
    broken = checks.replace(
        "name: str) -> str:\n    return f", "name: str) -> bytes:\n    return f"
    )
    assert broken != checks
    (copy / "check_public_api.py").write_text(broken)
    result = _mypy_strict(copy, ["check_public_api.py"])
    assert result.returncode != 0
    assert 'Expression is of type "bytes", not "str"' in result.stdout, result.stdout


@pytest.mark.slow
def test_pyright_finds_the_exported_types_nearly_complete():
    result = _verifytypes(ROOT)
    score = _score(result.stdout)
    assert "No py.typed file found" not in result.stdout, result.stdout
    assert score >= COMPLETENESS, (
        f"pyright knows the type of {score}% of durable's exported symbols, less than "
        f"{COMPLETENESS}%: annotate what it lists\n{result.stdout}"
    )
