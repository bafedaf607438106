"""The package stays layered: the import contracts in pyproject.toml hold (import-linter)."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> subprocess.CompletedProcess:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert command, "lint-imports is missing: install the test extra (pip install -e '.[test]')"
    return subprocess.run([command], cwd=ROOT, capture_output=True, text=True)


def test_every_import_contract_is_kept():
    result = _lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


def test_the_runtime_layers_are_checked(tmp_path):
    # A module low in the runtime importing one above it breaks the layers contract.
    copy = tmp_path / "project"
    shutil.copytree(ROOT / "durable", copy / "durable")
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    journal = copy / "durable" / "runtime" / "journal.py"
    journal.write_text(journal.read_text() + "\nfrom .frames import FunctionCall  # noqa\n")
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    result = subprocess.run(
        [command], cwd=copy, capture_output=True, text=True, env={"PYTHONPATH": str(copy)}
    )
    assert result.returncode != 0
    assert "The runtime is layered" in result.stdout and "BROKEN" in result.stdout
