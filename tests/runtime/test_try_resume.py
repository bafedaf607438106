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
        await guarded(
            orchestration_backend=DurableBackend(DiskStateStore(tmp_path)), instance_id="g"
        )
    gc.collect()
    assert EFFECTS == ["body"]


async def test_finally_runs_exactly_once_when_the_resumed_code_really_leaves_it(tmp_path):
    with pytest.raises(PauseForEventException):
        await guarded(
            orchestration_backend=DurableBackend(DiskStateStore(tmp_path)), instance_id="g"
        )
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
    result = await cleanup_then_return(
        21, orchestration_backend=DurableBackend(store), instance_id="r"
    )
    assert result == 42
    assert EFFECTS == ["cleanup", "cleanup done"]


class PaymentError(Exception):
    pass


def _charge():
    try:
        {}["card"]
    except KeyError as missing:
        raise PaymentError("card declined") from missing


@make_durable
async def keeps_history():
    try:
        _charge()
    except PaymentError as error:
        raise PauseForEventException("review")  # noqa: B904 (a wait point, not a raise)
        return (
            type(error.__cause__).__name__,
            type(error.__context__).__name__,
            error.__suppress_context__,
            "_charge" in error.__durable_traceback__,
            any("card declined" in note or "_charge" in note for note in error.__notes__),
        )


async def test_exception_kept_across_a_checkpoint_keeps_cause_context_and_traceback_text(tmp_path):
    store = DiskStateStore(tmp_path)
    with pytest.raises(PauseForEventException):
        await keeps_history(orchestration_backend=DurableBackend(store), instance_id="h")
    backend = DurableBackend(store)
    backend.publish_event("h", "review")
    assert await keeps_history(orchestration_backend=backend, instance_id="h") == (
        "KeyError",
        "KeyError",
        True,
        True,
        True,
    )


@make_durable
async def fails_with_cause():
    _charge()


async def test_stored_failure_is_raised_again_with_its_cause_and_original_traceback(tmp_path):
    store = DiskStateStore(tmp_path)
    with pytest.raises(PaymentError):
        await fails_with_cause(orchestration_backend=DurableBackend(store), instance_id="f")
    with pytest.raises(PaymentError) as caught:
        await fails_with_cause(orchestration_backend=DurableBackend(store), instance_id="f")
    assert isinstance(caught.value.__cause__, KeyError)
    assert "in _charge" in caught.value.__durable_traceback__
