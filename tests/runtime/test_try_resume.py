"""try/except/finally around checkpoints: suspending never runs the user's handlers or finally."""

from __future__ import annotations

import gc

import pytest

from durable import DiskStateStore, DurableBackend, PauseForEventException, make_durable

EFFECTS: list[str] = []


@make_durable
async def guarded():
    try:
        EFFECTS.append("body")
        raise PauseForEventException("go")
        EFFECTS.append("after")
    except BaseException:
        EFFECTS.append("handler")
        raise
    finally:
        EFFECTS.append("finally")
    return "done"


@pytest.fixture(autouse=True)
def clear():
    EFFECTS.clear()


async def test_suspended_and_collected_coroutine_runs_no_handler_or_finally(tmp_path):
    with pytest.raises(PauseForEventException):
        await guarded(orchestration_backend=DurableBackend(DiskStateStore(tmp_path)), instance_id="g")
    gc.collect()
    assert EFFECTS == ["body"]


async def test_finally_runs_exactly_once_when_the_resumed_code_really_leaves_it(tmp_path):
    with pytest.raises(PauseForEventException):
        await guarded(orchestration_backend=DurableBackend(DiskStateStore(tmp_path)), instance_id="g")
    gc.collect()
    backend = DurableBackend(DiskStateStore(tmp_path))
    backend.publish_event("g", "go")
    assert await guarded(orchestration_backend=backend, instance_id="g") == "done"
    assert EFFECTS == ["body", "after", "finally"]


@make_durable
async def cleanup_then_return(value):
    try:
        return value * 2
    finally:
        EFFECTS.append("cleanup")
        raise PauseForEventException("cleaned")
        EFFECTS.append("cleanup done")


async def test_return_pending_when_the_finally_paused_completes_after_resume(tmp_path):
    store = DiskStateStore(tmp_path)
    with pytest.raises(PauseForEventException):
        await cleanup_then_return(21, orchestration_backend=DurableBackend(store), instance_id="r")
    DurableBackend(store).publish_event("r", "cleaned")
    result = await cleanup_then_return(21, orchestration_backend=DurableBackend(store), instance_id="r")
    assert result == 42
    assert EFFECTS == ["cleanup", "cleanup done"]
