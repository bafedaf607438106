"""Resuming a frame into changed code is never silent (DESIGN §4, COMPILER.md §3.10)."""

from __future__ import annotations

import importlib
import sys

import pytest

from durable import DiskStateStore, DurableBackend, IncompatibleStateError, PauseForEventException

FLOW = '''
from durable import PauseForEventException, make_durable


@make_durable
async def flow(n):
    total = n * 2
    raise PauseForEventException("go")
    return {result}
'''


def load(tmp_path, monkeypatch, result: str):
    (tmp_path / "changing_flow.py").write_text(FLOW.format(result=result))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("changing_flow", None)
    importlib.invalidate_caches()
    return importlib.import_module("changing_flow")


async def test_changed_source_refuses_to_resume_naming_function_fingerprints_and_line(
    tmp_path, monkeypatch
):
    store = DiskStateStore(tmp_path / "store")
    old = load(tmp_path, monkeypatch, "total")
    with pytest.raises(PauseForEventException):
        await old.flow(1, orchestration_backend=DurableBackend(store), instance_id="f")
    old_fingerprint = old.flow.code.fingerprint

    new = load(tmp_path, monkeypatch, "total + 1")
    assert new.flow.code.fingerprint != old_fingerprint
    backend = DurableBackend(store)
    backend.publish_event("f", "go")
    with pytest.raises(IncompatibleStateError) as caught:
        await new.flow(1, orchestration_backend=backend, instance_id="f")
    message = str(caught.value)
    assert "flow" in message and "line 8" in message
    assert old_fingerprint[:16] in message and new.flow.code.fingerprint[:16] in message


async def test_reformatted_source_resumes(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    old = load(tmp_path, monkeypatch, "total")
    with pytest.raises(PauseForEventException):
        await old.flow(1, orchestration_backend=DurableBackend(store), instance_id="f")
    new = load(tmp_path, monkeypatch, "(  total  )  # same code, new layout")
    backend = DurableBackend(store)
    backend.publish_event("f", "go")
    assert await new.flow(1, orchestration_backend=backend, instance_id="f") == 2
