"""The tutorial's app (examples/tutorial/myapp) is importable as ``myapp``, as it is in an
application's own test suite; its ledger is a fresh file per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "tutorial"))


@pytest.fixture(autouse=True)
def ledger_file(tmp_path, monkeypatch):
    """Each test's side effects go to a ledger of its own."""
    path = tmp_path / "ledger.jsonl"
    monkeypatch.setenv("MYAPP_LEDGER", str(path))
    return path
