"""Operating instances through the Python API, on every store: sleeping instances parked in
the store, cancel, retry, fork, edit, frames and history."""

from __future__ import annotations

import asyncio
import time

import pytest

from durable import (
    Cancelled,
    DiskStateStore,
    DurableBackend,
    DurableError,
    InMemoryStateStore,
    InstanceEndedError,
    InstanceSleeping,
    PauseForEventException,
    SQLiteStateStore,
)
from durable.worker import Worker

from . import operated


@pytest.fixture(params=["memory", "disk", "sqlite"])
def backend(request, tmp_path):
    store = {
        "memory": InMemoryStateStore,
        "disk": lambda: DiskStateStore(tmp_path / "store"),
        "sqlite": lambda: SQLiteStateStore(tmp_path / "store.db"),
    }[request.param]()
    yield DurableBackend(store)
    getattr(store, "close", lambda: None)()


class working:
    """A worker running over `backend` for the length of an ``async with``."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run(self.stop))
        return self.worker

    async def __aexit__(self, *exc_info) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, timeout=10)


async def until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def quick_worker(backend, **options) -> Worker:
    return Worker(backend, min_poll=0.01, max_poll=0.1, **options)


# -- sleeping instances cost nothing while they sleep ----------------------------------------
@pytest.mark.slow
async def test_a_long_sleep_parks_the_instance_as_sleeping_and_holds_no_slot(backend, ledger):
    handle = await operated.nap.start(ledger, 1.5, orchestration_backend=backend, instance_id="n")
    async with working(quick_worker(backend)) as worker:
        await until(lambda: handle.status() == "sleeping", what="the nap to park")
        assert worker.running == []
        state = backend.read_state("n")
        assert state["deadline"] == pytest.approx(time.time() + 1.5, abs=0.5)
        assert await handle.result(timeout=5) == "after"
    assert operated.lines(ledger) == ["before", "after"]


@pytest.mark.slow
async def test_a_parked_sleep_wakes_at_its_deadline_not_at_the_next_poll(backend, ledger):
    handle = await operated.nap.start(ledger, 1.2, orchestration_backend=backend, instance_id="n")
    async with working(Worker(backend, min_poll=0.01, max_poll=30)):
        await until(lambda: handle.status() == "sleeping", what="the nap to park")
        deadline = backend.read_state("n")["deadline"]
        await handle.result(timeout=5, poll_interval=0.01)
        assert time.time() - deadline < 0.5


async def test_a_sleep_shorter_than_park_sleeps_after_sleeps_in_its_run(backend, ledger):
    handle = await operated.nap.start(ledger, 0.3, orchestration_backend=backend, instance_id="n")
    async with working(quick_worker(backend, park_sleeps_after=1.0)) as worker:
        await until(lambda: operated.lines(ledger) == ["before"], what="the nap to start")
        await asyncio.sleep(0.1)
        assert handle.status() == "running" and worker.running == ["n"]
        assert await handle.result(timeout=5) == "after"


@pytest.mark.slow
async def test_many_sleepers_leave_every_slot_free_for_a_short_timer(backend, ledger):
    for number in range(12):
        await operated.nap.start(
            ledger, 3600, orchestration_backend=backend, instance_id=f"long-{number}"
        )
    async with working(quick_worker(backend, concurrency=2)) as worker:
        await until(
            lambda: all(
                operated.nap.handle(f"long-{n}", orchestration_backend=backend).status()
                == "sleeping"
                for n in range(12)
            ),
            what="the long naps to park",
        )
        # A parked run ends right after its write: it gives back its slot.
        await until(lambda: worker.running == [], timeout=2, what="the parked runs to end")
        short = await operated.nap.start(
            ledger, 1.1, orchestration_backend=backend, instance_id="short"
        )
        began = time.monotonic()
        assert await short.result(timeout=10) == "after"
        assert time.monotonic() - began < 2.5


@pytest.mark.slow
async def test_a_direct_call_of_a_sleeping_instance_sleeps_what_is_left_and_returns(
    backend, ledger
):
    handle = await operated.nap.start(ledger, 1.2, orchestration_backend=backend, instance_id="n")
    async with working(quick_worker(backend)):
        await until(lambda: handle.status() == "sleeping", what="the nap to park")
    deadline = backend.read_state("n")["deadline"]
    # This backend's runtime now parks sleeps (the worker set it); a direct call over another
    # backend object of the same store sleeps in place, as direct calls do.
    other = DurableBackend(backend.store)
    assert await operated.nap(ledger, 1.2, orchestration_backend=other, instance_id="n") == "after"
    assert time.time() >= deadline


async def test_a_runtime_that_parks_sleeps_raises_instance_sleeping_to_its_caller(backend, ledger):
    from durable.runtime.backend import runtime_for

    runtime_for(backend).park_sleeps_after = 0.5
    with pytest.raises(InstanceSleeping) as parked:
        await operated.nap(ledger, 60, orchestration_backend=backend, instance_id="n")
    assert parked.value.instance_id == "n"
    assert parked.value.wake_at == pytest.approx(time.time() + 60, abs=2)
    assert isinstance(parked.value, PauseForEventException)


# -- cancel ---------------------------------------------------------------------------------
async def test_cancelling_a_waiting_instance_runs_its_cleanup_with_durable_calls(backend, ledger):
    with pytest.raises(PauseForEventException):
        await operated.cancellable(ledger, 2, orchestration_backend=backend, instance_id="c")
    handle = operated.cancellable.handle("c", orchestration_backend=backend)
    assert handle.cancel("no longer needed") == "waiting"
    result = await operated.cancellable(ledger, 2, orchestration_backend=backend, instance_id="c")
    assert result == "cancelled"
    assert operated.lines(ledger) == ["step 0", "step 1", "cleanup no longer needed", "finally"]
    kinds = [row["kind"] for row in handle.history()]
    assert "cancel" in kinds


async def test_a_cancelled_waiting_instance_is_woken_by_the_worker_at_once(backend, ledger):
    handle = await operated.cancellable.start(
        ledger, 1, orchestration_backend=backend, instance_id="c"
    )
    async with working(quick_worker(backend)):
        await until(lambda: handle.status() == "waiting", what="the wait")
        handle.cancel("stop")
        assert await handle.result(timeout=5) == "cancelled"


async def test_a_cancelled_sleeping_instance_is_woken_and_its_finally_runs(backend, ledger):
    handle = await operated.sleeps_then_cleans_up.start(
        ledger, orchestration_backend=backend, instance_id="s"
    )
    async with working(quick_worker(backend)):
        await until(lambda: handle.status() == "sleeping", what="the sleep to park")
        assert handle.cancel() == "sleeping"
        with pytest.raises(Cancelled):
            await handle.result(timeout=5)
    assert handle.status() == "failed"
    assert operated.lines(ledger) == ["finally"]


async def test_a_running_instance_is_cancelled_at_its_next_checkpoint(backend, ledger):
    handle = await operated.cancellable.start(
        ledger, 10_000, orchestration_backend=backend, instance_id="c"
    )
    async with working(quick_worker(backend)):
        await until(lambda: len(operated.lines(ledger)) >= 3, what="a few steps")
        assert handle.cancel("mid-run") == "running"
        assert await handle.result(timeout=10) == "cancelled"
    done = operated.lines(ledger)
    assert done[-2:] == ["cleanup mid-run", "finally"]
    assert len(done) < 1000


@pytest.mark.slow
@pytest.mark.parametrize("kind", [DiskStateStore, SQLiteStateStore])
async def test_a_cancellation_stored_by_another_backend_reaches_a_running_instance(
    kind, tmp_path, ledger
):
    path = tmp_path / "store"
    backend = DurableBackend(kind(path))
    handle = await operated.cancellable.start(
        ledger, 10_000, orchestration_backend=backend, instance_id="c"
    )
    async with working(quick_worker(backend)):
        await until(lambda: len(operated.lines(ledger)) >= 3, what="a few steps")
        # Another backend object (as another process would): its request is in the inbox
        # only, and the run finds it within about a second.
        DurableBackend(kind(path)).cancel_instance("c", "elsewhere")
        began = time.monotonic()
        assert await handle.result(timeout=10) == "cancelled"
        assert time.monotonic() - began < 3


async def test_an_uncaught_cancellation_fails_the_instance_with_cancelled(backend, ledger):
    with pytest.raises(InstanceSleeping):
        from durable.runtime.backend import runtime_for

        runtime_for(backend).park_sleeps_after = 1.0
        await operated.sleeps_then_cleans_up(ledger, orchestration_backend=backend, instance_id="s")
    handle = operated.sleeps_then_cleans_up.handle("s", orchestration_backend=backend)
    handle.cancel("operator")
    with pytest.raises(Cancelled) as raised:
        await operated.sleeps_then_cleans_up(ledger, orchestration_backend=backend, instance_id="s")
    assert raised.value.reason == "operator"
    assert handle.status() == "failed"
    with pytest.raises(Cancelled):
        await handle.result()


async def test_cancelling_an_ended_or_unknown_instance_is_refused(backend, ledger):
    await operated.nap(ledger, 0, orchestration_backend=backend, instance_id="n")
    with pytest.raises(InstanceEndedError, match="completed already"):
        backend.cancel_instance("n")
    with pytest.raises(DurableError, match="no instance 'nobody'"):
        backend.cancel_instance("nobody")


async def test_the_cancel_event_name_is_reserved(backend):
    with pytest.raises(ValueError, match="reserved for cancellation"):
        backend.publish_event("x", "durable.cancel")


# -- retry ------------------------------------------------------------------------------------
async def test_retry_runs_the_failed_call_again_and_not_the_earlier_ones(backend, ledger):
    handle = await operated.failed_order(backend, ledger)
    assert handle.status() == "failed"
    again = handle.retry()
    assert len(again) == 1
    assert handle.status() == "enqueued"
    assert await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o") == (
        "ship",
        6,
    )
    assert operated.lines(ledger) == ["ship", "charge 6", "charge 6"]


async def test_a_retried_instance_is_run_by_a_worker(backend, ledger):
    handle = await operated.failed_order(backend, ledger)
    handle.retry()
    async with working(quick_worker(backend)):
        assert await handle.result(timeout=5) == ("ship", 6)


async def test_retry_of_an_instance_that_has_not_failed_is_refused(backend, ledger):
    handle = await operated.paused_order(backend, ledger)
    with pytest.raises(DurableError, match="only a failed instance is retried"):
        handle.retry()


async def test_retry_is_recorded_in_the_history(backend, ledger):
    handle = await operated.failed_order(backend, ledger)
    handle.retry()
    operators = [row for row in handle.history() if row["kind"] == "operator"]
    assert [row["function"] for row in operators] == ["retry"]


# -- fork -------------------------------------------------------------------------------------
async def test_a_fork_resumes_from_the_snapshot_and_shares_nothing_afterwards(backend, ledger):
    original = await operated.paused_order(backend, ledger)
    fork = original.fork("o-fork")
    assert fork.status() == "waiting"
    backend.publish_event("o-fork", "pay")
    result = await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o-fork")
    assert result == ("ship", 6)
    assert original.status() == "waiting"  # the fork's event did not reach it
    assert operated.lines(ledger) == ["ship", "charge 6"]  # ship was not repeated
    assert [row["function"] for row in fork.history() if row["kind"] == "operator"] == ["forked"]


async def test_forking_into_an_existing_id_or_from_a_completed_instance_is_refused(backend, ledger):
    original = await operated.paused_order(backend, ledger)
    await operated.paused_order(backend, ledger, "taken")
    with pytest.raises(DurableError, match="exists already"):
        original.fork("taken")
    await operated.nap(ledger, 0, orchestration_backend=backend, instance_id="done")
    with pytest.raises(InstanceEndedError, match="no call stack to fork"):
        operated.nap.handle("done", orchestration_backend=backend).fork("done-2")


async def test_a_fork_of_a_failed_instance_runs_its_failed_call_again(backend, ledger):
    original = await operated.failed_order(backend, ledger)
    fork = original.fork("o-2")
    assert fork.status() == "enqueued"
    assert await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o-2") == (
        "ship",
        6,
    )
    assert original.status() == "failed"


# -- edit, frames -----------------------------------------------------------------------------
async def test_an_edited_live_local_is_what_the_instance_resumes_with(backend, ledger):
    handle = await operated.paused_order(backend, ledger)
    (frame,) = handle.frames()
    assert frame.live_locals["total"] == 6
    handle.edit(0, total=100)
    assert handle.frames()[0].live_locals["total"] == 100
    backend.publish_event("o", "pay")
    assert await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o") == (
        "ship",
        100,
    )
    edits = [row for row in handle.history() if row["function"] == "edited"]
    assert edits[0]["detail"] == {"frame": 0, "set": {"total": "100"}}


async def test_editing_a_name_that_is_not_live_names_the_live_ones(backend, ledger):
    handle = await operated.paused_order(backend, ledger)
    with pytest.raises(ValueError, match=r"'amount_typo' is not live in frame 0 .* total"):
        handle.edit(0, amount_typo=1)
    with pytest.raises(ValueError, match="there is no frame 3"):
        handle.edit(3, total=1)


async def test_editing_a_completed_instance_is_refused(backend, ledger):
    await operated.nap(ledger, 0, orchestration_backend=backend, instance_id="n")
    with pytest.raises(InstanceEndedError):
        operated.nap.handle("n", orchestration_backend=backend).edit(0, seconds=1)


# -- history ----------------------------------------------------------------------------------
async def test_history_summarizes_every_operation_of_a_completed_instance(backend, ledger):
    await operated.paused_order(backend, ledger)
    backend.publish_event("o", "pay")
    await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o")
    rows = operated.order.handle("o", orchestration_backend=backend).history()
    assert [(row["seq"], row["kind"], row["status"]) for row in rows] == [
        (1, "call", "SUCCEEDED"),
        (2, "event", "SUCCEEDED"),
        (3, "call", "SUCCEEDED"),
    ]
    assert rows[0]["function"] == "tests.worker.operated.note"
    assert rows[2]["function"] == "tests.worker.operated.charge"
    for row in rows:
        assert row["started_at"] <= row["ended_at"]
        assert row["duration"] == pytest.approx(row["ended_at"] - row["started_at"])
        assert "result" not in row and "value" not in row


async def test_history_keeps_a_failed_call_with_its_error_summary(backend, ledger):
    handle = await operated.failed_order(backend, ledger)
    failed = [row for row in handle.history() if row["status"] == "FAILED"]
    assert failed[0]["error"] == "RuntimeError: card declined for 6"


async def test_history_outlives_the_journal_and_its_compactions(tmp_path, ledger):
    backend = DurableBackend(InMemoryStateStore(), compact_after=4)
    with pytest.raises(PauseForEventException):
        await operated.cancellable(ledger, 30, orchestration_backend=backend, instance_id="c")
    handle = operated.cancellable.handle("c", orchestration_backend=backend)
    assert [row["seq"] for row in handle.history()][:30] == list(range(1, 31))
    assert len(backend.read_state("c").get("journal") or {}) < 5


async def test_history_keeps_only_the_newest_rows_of_its_limit(ledger):
    backend = DurableBackend(InMemoryStateStore(), compact_after=3)
    await operated.twenty_steps(ledger, orchestration_backend=backend, instance_id="m")
    rows = operated.twenty_steps.handle("m", orchestration_backend=backend).history()
    assert [row["seq"] for row in rows] == [16, 17, 18, 19, 20]


async def test_a_fork_at_an_earlier_operation_runs_what_came_after_it_again(backend, ledger):
    handle = await operated.paused_order(backend, ledger)
    backend.publish_event("o", "pay")
    await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o")
    fork = handle.fork("o-at-1", at=1)  # just after the shipping, before the payment
    assert fork.status() == "enqueued"
    with pytest.raises(PauseForEventException):
        await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o-at-1")
    backend.publish_event("o-at-1", "pay")
    assert await operated.order(ledger, 5, orchestration_backend=backend, instance_id="o-at-1") == (
        "ship",
        6,
    )
    assert operated.lines(ledger) == ["ship", "charge 6", "charge 6"]  # shipped once
    assert handle.status() == "completed"


async def test_a_fork_at_an_operation_the_log_no_longer_holds_names_the_ones_it_does(ledger):
    backend = DurableBackend(InMemoryStateStore(), compact_after=2)
    with pytest.raises(PauseForEventException):
        await operated.cancellable(ledger, 6, orchestration_backend=backend, instance_id="c")
    handle = operated.cancellable.handle("c", orchestration_backend=backend)
    with pytest.raises(ValueError, match=r"no snapshot taken at operation 1: its log holds"):
        handle.fork("c-2", at=1)
    assert backend.read_state("c-2") is None
