"""`Worker` in this process: what it picks up, deadlines, concurrency, failures, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    PauseForEventException,
    SQLiteStateStore,
)
from durable import worker as worker_module
from durable.runtime import catalog
from durable.runtime.backend import runtime_for
from durable.stores.base import InstanceSummary
from durable.worker import Worker
from tests.worker import flows

STORES = ["memory", "file", "sqlite"]


def make_store(kind: str, tmp_path):
    if kind == "memory":
        return InMemoryStateStore()
    if kind == "file":
        return DiskStateStore(tmp_path / "store")
    return SQLiteStateStore(tmp_path / "store.db")


@pytest.fixture
def backend(tmp_path):
    backend = DurableBackend(DiskStateStore(tmp_path / "store"))
    yield backend
    backend.store.close()


@contextlib.asynccontextmanager
async def working(worker: Worker):
    """Run `worker` in a task for the duration of the block; stop it and wait at the end."""
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


async def until(condition, timeout: float = 5.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", STORES)
async def test_enqueued_instances_run_to_completion(tmp_path, kind):
    store = make_store(kind, tmp_path)
    backend = DurableBackend(store)
    ledger = str(tmp_path / "ledger")
    handles = [
        await flows.record.start(
            ledger, name, instance_id=f"r-{name}", orchestration_backend=backend
        )
        for name in ("a", "b", "c")
    ]
    async with working(Worker(backend)):
        results = [await handle.result(timeout=5) for handle in handles]
        # Started while the worker runs: seen by the next round.
        late = await flows.record.start(
            ledger, "d", instance_id="r-d", orchestration_backend=backend
        )
        results.append(await late.result(timeout=5))
    assert results == ["recorded a", "recorded b", "recorded c", "recorded d"]
    assert sorted(flows.lines(ledger)) == ["a", "b", "c", "d"]
    if kind == "sqlite":
        store.close()


async def test_a_waiting_instance_runs_when_its_event_is_published(backend):
    handle = await flows.approval.start("deploy", instance_id="ap-1", orchestration_backend=backend)
    async with working(Worker(backend)):
        await until(lambda: handle.status() == "waiting", what="the instance to wait")
        await asyncio.sleep(0.2)  # idle rounds: nothing to do until the event
        assert handle.status() == "waiting"
        backend.publish_event("ap-1", "approve", {"by": "ops"})
        assert await handle.result(timeout=5) == "deploy approved by ops"


@pytest.mark.parametrize("kind", STORES)
async def test_an_instance_waiting_for_any_of_several_events_runs_when_the_second_comes(
    tmp_path, kind
):
    backend = DurableBackend(make_store(kind, tmp_path))
    handle = await flows.approve_or_reject.start(
        "spend", 60.0, instance_id="ar-1", orchestration_backend=backend
    )
    async with working(Worker(backend)):
        await until(lambda: handle.status() == "waiting", what="the instance to wait")
        backend.publish_event("ar-1", "reject", None)
        assert await handle.result(timeout=5) == "spend rejected"
    if kind != "memory":
        backend.store.close()


async def test_an_instance_waiting_for_the_first_of_events_and_a_timer_wakes_at_the_timer(
    backend,
):
    handle = await flows.approve_or_reject.start(
        "spend", 0.3, instance_id="ar-2", orchestration_backend=backend
    )
    async with working(Worker(backend, max_poll=30)):
        await until(lambda: handle.status() == "waiting", what="the instance to wait")
        assert await handle.result(timeout=5) == "spend timed out"


async def test_an_event_published_before_the_worker_starts_is_consumed(backend):
    handle = await flows.approval.start("db", instance_id="ap-2", orchestration_backend=backend)
    backend.publish_event("ap-2", "approve", {"by": "early"})
    async with working(Worker(backend)):
        assert await handle.result(timeout=5) == "db approved by early"
    assert backend.pending_events("ap-2") == []


async def test_an_event_timeout_wakes_the_instance_at_its_deadline_not_at_the_next_poll(backend):
    handle = await flows.ask_with_timeout.start(
        0.3, instance_id="t-1", orchestration_backend=backend
    )
    began = time.time()
    # Polls 1 s apart at best: only the deadline can wake it in time.
    async with working(Worker(backend, min_poll=1.0, max_poll=5.0)):
        await until(lambda: handle.status() == "waiting", what="the instance to wait")
        deadline = backend.read_state("t-1")["deadline"]
        assert await handle.result(timeout=5) == "timed out"
    finished = backend.read_state("t-1")["updated_at"]
    assert deadline <= finished < deadline + 0.5, (began, deadline, finished)


async def test_a_durable_sleep_completes_in_the_worker(backend, tmp_path):
    ledger = str(tmp_path / "ledger")
    handle = await flows.nap.start(ledger, 0.5, instance_id="n-1", orchestration_backend=backend)
    async with working(Worker(backend)):
        slept = await handle.result(timeout=5)
    assert 0.5 <= slept < 1.0
    assert [line.split()[0] for line in flows.lines(ledger)] == ["start", "end"]


async def test_no_more_than_concurrency_runs_at_a_time(backend):
    flows.ACTIVE.update(now=0, most=0)
    handles = [
        await flows.crowded.start(0.15, instance_id=f"c-{i}", orchestration_backend=backend)
        for i in range(6)
    ]
    worker = Worker(backend, concurrency=2)
    async with working(worker):
        for handle in handles:
            assert await handle.result(timeout=5) == 0.15
    assert flows.ACTIVE == {"now": 0, "most": 2}


async def test_a_failing_workflow_is_logged_and_the_worker_goes_on(backend, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="durable")
    failing = await flows.broken.start("no stock", instance_id="b-1", orchestration_backend=backend)
    async with working(Worker(backend)):
        with pytest.raises(LookupError, match="no stock"):
            await failing.result(timeout=5)
        later = await flows.record.start(
            str(tmp_path / "ledger"), "x", instance_id="r-x", orchestration_backend=backend
        )
        assert await later.result(timeout=5) == "recorded x"
    failures = [
        r for r in caplog.records if r.name == "durable.worker" and "failed" in r.getMessage()
    ]
    assert len(failures) == 1
    assert "'b-1' failed: LookupError: no stock" in failures[0].getMessage()
    assert failures[0].levelno == logging.ERROR
    messages = [r.getMessage() for r in caplog.records]
    assert "instance 'r-x' completed" in messages


async def test_an_instance_the_runtime_cannot_run_is_logged_once_and_skipped(backend, caplog):
    caplog.set_level(logging.INFO, logger="durable.worker")
    await flows.record.start("unused", "y", instance_id="gone-1", orchestration_backend=backend)
    key = flows.record.key
    saved = catalog._programs.pop(key)  # as if the function no longer existed
    try:
        async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
            await asyncio.sleep(0.3)  # many rounds
    finally:
        catalog._programs[key] = saved
    refusals = [r for r in caplog.records if "could not be run" in r.getMessage()]
    assert len(refusals) == 1
    assert "IncompatibleStateError" in refusals[0].getMessage()
    assert backend.read_state("gone-1")["status"] == "enqueued"


async def test_an_instance_run_by_another_runner_is_left_alone(tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    ledger = str(tmp_path / "ledger")
    runner = DurableBackend(DiskStateStore(tmp_path / "store"))
    other = asyncio.create_task(
        flows.two_steps(
            ledger, str(started), str(release), orchestration_backend=runner, instance_id="o-1"
        )
    )
    await until(started.exists, what="the other runner to start")
    backend = DurableBackend(DiskStateStore(tmp_path / "store"))
    async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
        await asyncio.sleep(0.3)
        assert backend.read_state("o-1")["status"] == "running"
        release.touch()
        assert await other == "released"
    assert flows.lines(str(started)) == ["started"]
    assert flows.lines(ledger) == ["second"]


async def test_stop_lets_the_step_in_progress_finish_and_starts_no_other(backend, tmp_path):
    started, release = tmp_path / "started", tmp_path / "release"
    ledger = str(tmp_path / "ledger")
    handle = await flows.two_steps.start(
        ledger, str(started), str(release), instance_id="s-1", orchestration_backend=backend
    )
    worker = Worker(backend, grace=5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await until(started.exists, what="the first step to start")
    stop.set()
    await asyncio.sleep(0.1)
    assert not task.done()  # waiting for the step in progress
    release.touch()
    await asyncio.wait_for(task, timeout=5)
    assert worker.running == []
    assert handle.status() == "running"
    assert flows.lines(ledger) == []  # the second step did not start
    other = DurableBackend(DiskStateStore(backend.store.path))
    assert other.acquire_instance("s-1") is None  # the lease was released
    other.release_instance("s-1")
    # The next worker resumes after the first step: it does not run again.
    async with working(Worker(other)):
        assert await other_handle(handle, other).result(timeout=5) == "released"
    assert flows.lines(str(started)) == ["started"]
    assert flows.lines(ledger) == ["second"]


def other_handle(handle, backend):
    return flows.two_steps.handle(handle.instance_id, orchestration_backend=backend)


async def test_a_run_still_going_after_the_grace_period_is_abandoned_resumably(backend, tmp_path):
    ledger = str(tmp_path / "ledger")
    handle = await flows.nap.start(ledger, 30, instance_id="z-1", orchestration_backend=backend)
    worker = Worker(backend, grace=0.2, park_sleeps_after=60)  # the nap sleeps in its run
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await until(lambda: len(flows.lines(ledger)) == 1, what="the nap to start")
    await asyncio.sleep(0.05)
    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert 0.2 <= time.monotonic() - began < 1.0
    assert handle.status() == "running"
    state = backend.read_state("z-1")
    assert any(entry.get("kind") == "timer" for entry in state["journal"].values())
    other = DurableBackend(DiskStateStore(backend.store.path))
    assert other.acquire_instance("z-1") is None
    other.release_instance("z-1")


async def test_a_cancelled_worker_abandons_its_runs_resumably(backend, tmp_path):
    ledger = str(tmp_path / "ledger")
    handle = await flows.nap.start(ledger, 30, instance_id="z-2", orchestration_backend=backend)
    task = asyncio.create_task(Worker(backend, park_sleeps_after=60).run())
    await until(lambda: len(flows.lines(ledger)) == 1, what="the nap to start")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=5)
    assert handle.status() == "running"
    other = DurableBackend(DiskStateStore(backend.store.path))
    assert other.acquire_instance("z-2") is None
    other.release_instance("z-2")


async def test_a_worker_stopped_when_idle_returns_at_once(backend):
    worker = Worker(backend, min_poll=0.5, max_poll=5)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.1)
    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, timeout=2)
    assert time.monotonic() - began < 0.3


def test_the_worker_refuses_bad_settings(backend):
    with pytest.raises(ValueError, match="concurrency"):
        Worker(backend, concurrency=0)
    with pytest.raises(ValueError, match="min_poll"):
        Worker(backend, min_poll=2, max_poll=1)
    with pytest.raises(ValueError, match="grace"):
        Worker(backend, grace=-1)
    with pytest.raises(TypeError, match="DurableBackend"):
        Worker(object())


# -- over an indexed store (SQLite): the due instances only ---------------------------------------
@pytest.fixture
def sqlite_path(tmp_path):
    return tmp_path / "store.db"


def counting_reads(backend: DurableBackend) -> list[str]:
    """Wrap `backend.read_state` to note the id of every read; returns the notes."""
    reads: list[str] = []
    read_state = backend.read_state

    def counted(instance_id):
        reads.append(instance_id)
        return read_state(instance_id)

    backend.read_state = counted
    return reads


def refuse_listing(store) -> None:
    def list_instances():
        raise AssertionError("an indexed store is not listed")

    store.list_instances = list_instances


async def test_a_worker_over_an_indexed_store_reads_only_the_due_instances(
    tmp_path, sqlite_path, caplog
):
    caplog.set_level(logging.INFO, logger="durable.worker")
    ledger = str(tmp_path / "ledger")
    starter = DurableBackend(SQLiteStateStore(sqlite_path))
    finished = [f"done-{n}" for n in range(40)]
    for name in finished:
        await flows.record(ledger, name, orchestration_backend=starter, instance_id=name)
    waiting = await flows.approval.start(
        "deploy", instance_id="ap-1", orchestration_backend=starter
    )
    with pytest.raises(PauseForEventException):
        await flows.approval("deploy", orchestration_backend=starter, instance_id="ap-1")
    queued = [
        await flows.record.start(ledger, name, instance_id=name, orchestration_backend=starter)
        for name in ("new-1", "new-2")
    ]
    backend = DurableBackend(SQLiteStateStore(sqlite_path))
    reads = counting_reads(backend)
    refuse_listing(backend.store)
    async with working(Worker(backend, min_poll=0.01, max_poll=0.05)):
        for handle in queued:
            await handle.result(timeout=5)
        await asyncio.sleep(0.2)  # idle rounds: nothing is due
        assert set(reads) == {"new-1", "new-2"}
        starter.publish_event("ap-1", "approve", {"by": "ops"})
        assert await waiting.result(timeout=5) == "deploy approved by ops"
    assert set(reads) == {"new-1", "new-2", "ap-1"}  # never one of the 40 finished instances
    messages = [r.getMessage() for r in caplog.records]
    assert any("asking the store's index for due instances" in m for m in messages)
    starter.store.close()
    backend.store.close()


async def test_a_waiting_instance_with_an_event_of_another_name_is_checked_not_run(sqlite_path):
    starter = DurableBackend(SQLiteStateStore(sqlite_path))
    handle = await flows.approval.start("db", instance_id="ap-2", orchestration_backend=starter)
    with pytest.raises(PauseForEventException):
        await flows.approval("db", orchestration_backend=starter, instance_id="ap-2")
    starter.publish_event("ap-2", "something else")
    backend = DurableBackend(SQLiteStateStore(sqlite_path))
    reads = counting_reads(backend)
    async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
        await asyncio.sleep(0.3)
        # Due by the index (an event is pending), read each round, never run.
        assert reads and set(reads) == {"ap-2"}
        assert handle.status() == "waiting"
        starter.publish_event("ap-2", "approve", {"by": "dba"})
        assert await handle.result(timeout=5) == "db approved by dba"
    assert [e.name for e in starter.pending_events("ap-2")] == ["something else"]
    starter.store.close()
    backend.store.close()


async def test_instances_the_index_does_not_know_are_read_once_then_filled_in(
    tmp_path, sqlite_path, caplog
):
    caplog.set_level(logging.INFO, logger="durable.worker")
    ledger = str(tmp_path / "ledger")
    starter = DurableBackend(SQLiteStateStore(sqlite_path))
    for name in ("old-1", "old-2", "old-3"):
        await flows.record(ledger, name, orchestration_backend=starter, instance_id=name)
    waiting = await flows.approval.start("x", instance_id="old-ap", orchestration_backend=starter)
    with pytest.raises(PauseForEventException):
        await flows.approval("x", orchestration_backend=starter, instance_id="old-ap")
    queued = await flows.record.start(
        ledger, "old-new", instance_id="old-new", orchestration_backend=starter
    )
    # As a file of schema 1 leaves them after its migration: no summary.
    starter.store._write(None, [("UPDATE instances SET status = NULL, wake_at = NULL", ())])
    assert starter.store.due_instances(time.time()) == [
        "old-1",
        "old-2",
        "old-3",
        "old-ap",
        "old-new",
    ]
    backend = DurableBackend(SQLiteStateStore(sqlite_path))
    reads = counting_reads(backend)
    async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
        assert await queued.result(timeout=5) == "recorded old-new"  # not stranded
        await asyncio.sleep(0.2)  # many rounds
    for name in ("old-1", "old-2", "old-3", "old-ap"):
        assert reads.count(name) == 1, (name, reads)
    store = starter.store
    assert store.summary("old-1").status == "completed"
    assert store.summary("old-ap") == InstanceSummary("waiting", "approve", None)
    assert store.summary("old-new").status == "completed"  # written by its run
    assert store.due_instances(time.time()) == []
    assert waiting.status() == "waiting"
    assert any("did not know" in r.getMessage() for r in caplog.records)
    starter.store.close()
    backend.store.close()


async def test_a_failing_index_is_logged_once_and_the_worker_goes_on(tmp_path, sqlite_path, caplog):
    caplog.set_level(logging.INFO, logger="durable.worker")
    backend = DurableBackend(SQLiteStateStore(sqlite_path))
    due_instances = backend.store.due_instances
    failures = {"left": 10}

    def flaky(now, limit):
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return due_instances(now, limit)

    backend.store.due_instances = flaky
    handle = await flows.record.start(
        str(tmp_path / "ledger"), "z", instance_id="r-z", orchestration_backend=backend
    )
    async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
        assert await handle.result(timeout=5) == "recorded z"
    errors = [r for r in caplog.records if "cannot ask" in r.getMessage()]
    assert len(errors) == 1 and "database is locked" in errors[0].getMessage()
    backend.store.close()


async def test_an_idle_worker_wakes_a_due_timer_within_the_latency_budget(sqlite_path):
    """The issue's target is 50 ms after the deadline when idle; asserted with room for noisy
    machines. Measured: the deadline of each event timeout to its completion's write."""
    backend = DurableBackend(SQLiteStateStore(sqlite_path))
    timeouts = (0.4, 0.8, 1.2)
    handles = [
        await flows.ask_with_timeout.start(
            seconds, instance_id=f"t-{n}", orchestration_backend=backend
        )
        for n, seconds in enumerate(timeouts)
    ]
    # Polls 5 s apart: only the index's next wake-up time can wake it in time.
    async with working(Worker(backend, min_poll=5.0, max_poll=5.0)):
        await until(
            lambda: all(h.status() == "waiting" for h in handles), what="the instances to wait"
        )
        deadlines = [backend.read_state(h.instance_id)["deadline"] for h in handles]
        for handle in handles:
            assert await handle.result(timeout=5) == "timed out"
    latencies = [
        backend.read_state(h.instance_id)["updated_at"] - deadline
        for h, deadline in zip(handles, deadlines, strict=True)
    ]
    print(
        "timer wake latency (deadline -> completion written), ms: "
        + ", ".join(f"{latency * 1000:.1f}" for latency in latencies)
    )
    assert all(0 <= latency < 0.25 for latency in latencies), latencies
    backend.store.close()


class FillsUp(InMemoryStateStore):
    """Refuses record writes with ENOSPC while `full`, counting the refusals."""

    full = False
    refused = 0

    def append_record(self, instance_id, record, summary=None):
        if self.full:
            self.refused += 1
            raise OSError(28, "No space left on device")
        return super().append_record(instance_id, record, summary)


async def test_a_failed_store_write_is_logged_once_and_retried_later_and_later(
    tmp_path, caplog, monkeypatch
):
    from durable import worker as worker_module

    monkeypatch.setattr(worker_module, "_WRITE_RETRY_FIRST", 0.1)
    monkeypatch.setattr(worker_module, "_WRITE_RETRY_MAX", 0.4)
    store = FillsUp()
    backend = DurableBackend(store)
    ledger = str(tmp_path / "ledger")
    handle = await flows.record.start(
        ledger, "a", instance_id="full-1", orchestration_backend=backend
    )
    store.full = True
    with caplog.at_level(logging.DEBUG, logger="durable.worker"):
        async with working(Worker(backend, min_poll=0.01, max_poll=0.05)):
            await asyncio.sleep(1.0)
            refused = store.refused
            store.full = False
            assert await handle.result(timeout=5) == "recorded a"
    # Backing off (0.1, 0.2, 0.4, 0.4 s...): a handful of tries in a second, not hundreds.
    assert 2 <= refused <= 8
    errors = [
        r for r in caplog.records if r.levelno == logging.ERROR and "full-1" in r.getMessage()
    ]
    assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
    # Without a reconciler a call whose outcome could not be written runs again (at least
    # once): once per try here; tests/runtime/test_failed_writes.py has it exactly once.
    assert flows.lines(ledger) == ["a"] * (store.refused + 1)


# -- crash takeover: a running instance whose runner is gone comes first ----------------------
async def enqueue_backlog(backend, ledger: str, count: int) -> None:
    for n in range(count):
        await flows.record.start(
            ledger, f"n{n}", instance_id=f"b-{n:03d}", orchestration_backend=backend
        )


async def orphan(backend, tmp_path, ledger: str) -> None:
    """Leave instance "orphan" running with its lease free, as a killed runner leaves it: its
    run is abandoned in its first step (its state written after the backlog's)."""
    started = tmp_path / "orphan-started"
    runner = DurableBackend(type(backend.store)(backend.store.path))
    run = asyncio.create_task(
        flows.two_steps(
            ledger, str(started), str(tmp_path / "orphan-release"),
            orchestration_backend=runner, instance_id="orphan",
        )
    )  # fmt: skip
    await until(started.exists, what="the orphan's first step to start")
    runtime_for(runner).abandon()
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    runner.store.close()
    (tmp_path / "orphan-release").touch()
    assert backend.read_state("orphan")["status"] == "running"


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_running_instance_whose_runner_is_gone_runs_before_older_enqueued_ones(
    tmp_path, kind
):
    backend = DurableBackend(make_store(kind, tmp_path))
    ledger = str(tmp_path / "ledger")
    await enqueue_backlog(backend, ledger, 20)
    await orphan(backend, tmp_path, ledger)
    async with working(Worker(backend, concurrency=1, min_poll=0.01, max_poll=0.02)):
        await until(lambda: len(flows.lines(ledger)) == 21, what="every instance to finish")
    assert flows.lines(ledger)[0] == "second"  # the orphan's last step, before any backlog


async def test_past_the_index_limit_the_store_answers_which_instances_are_running(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(worker_module, "DUE_LIMIT", 5)
    backend = DurableBackend(SQLiteStateStore(tmp_path / "store.db"))
    ledger = str(tmp_path / "ledger")
    await enqueue_backlog(backend, ledger, 20)
    await orphan(backend, tmp_path, ledger)
    assert backend.store.running_instances(10) == ["orphan"]
    async with working(Worker(backend, concurrency=1, min_poll=0.01, max_poll=0.02)):
        await until(lambda: len(flows.lines(ledger)) == 21, what="every instance to finish")
    assert flows.lines(ledger)[0] == "second"  # the orphan's last step, before any backlog


@pytest.mark.parametrize("kind", ["file", "sqlite"])
async def test_a_running_instance_a_live_runner_holds_takes_no_slot(tmp_path, kind, caplog):
    backend = DurableBackend(make_store(kind, tmp_path))
    ledger = str(tmp_path / "ledger")
    await orphan(backend, tmp_path, ledger)
    holder = DurableBackend(type(backend.store)(backend.store.path))
    assert holder.acquire_instance("orphan") is None  # a live runner of it, elsewhere
    await enqueue_backlog(backend, ledger, 3)
    caplog.set_level(logging.INFO, logger="durable.worker")
    async with working(Worker(backend, concurrency=1, min_poll=0.01, max_poll=0.02)):
        await until(lambda: len(flows.lines(ledger)) == 3, what="the backlog to finish")
        await asyncio.sleep(0.1)
    holder.release_instance("orphan")
    assert backend.read_state("orphan")["status"] == "running"
    messages = [record.getMessage() for record in caplog.records]
    assert not any("'orphan' resumed" in message for message in messages)
    skipped = [m for m in messages if "'orphan' skipped: it is being run by another" in m]
    assert len(skipped) == 1  # then quiet (DEBUG) while it stays held
