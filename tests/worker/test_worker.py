"""`Worker` in this process: what it picks up, deadlines, concurrency, failures, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest

from durable import DiskStateStore, DurableBackend, InMemoryStateStore, SQLiteStateStore
from durable.runtime import program as program_module
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
        await flows.record.start(ledger, name, instance_id=f"r-{name}", orchestration_backend=backend)
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
    handle = await flows.approval.start(
        "deploy", instance_id="ap-1", orchestration_backend=backend
    )
    async with working(Worker(backend)):
        await until(lambda: handle.status() == "waiting", what="the instance to wait")
        await asyncio.sleep(0.2)  # idle rounds: nothing to do until the event
        assert handle.status() == "waiting"
        backend.publish_event("ap-1", "approve", {"by": "ops"})
        assert await handle.result(timeout=5) == "deploy approved by ops"


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
    caplog.set_level(logging.INFO, logger="durable.worker")
    failing = await flows.broken.start("no stock", instance_id="b-1", orchestration_backend=backend)
    async with working(Worker(backend)):
        with pytest.raises(LookupError, match="no stock"):
            await failing.result(timeout=5)
        later = await flows.record.start(
            str(tmp_path / "ledger"), "x", instance_id="r-x", orchestration_backend=backend
        )
        assert await later.result(timeout=5) == "recorded x"
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert "'b-1' failed: LookupError: no stock" in failures[0].getMessage()
    assert failures[0].levelno == logging.ERROR
    messages = [r.getMessage() for r in caplog.records]
    assert "instance 'r-x' completed" in messages


async def test_an_instance_the_runtime_cannot_run_is_logged_once_and_skipped(backend, caplog):
    caplog.set_level(logging.INFO, logger="durable.worker")
    await flows.record.start("unused", "y", instance_id="gone-1", orchestration_backend=backend)
    key = flows.record.key
    saved = program_module._programs.pop(key)  # as if the function no longer existed
    try:
        async with working(Worker(backend, min_poll=0.01, max_poll=0.02)):
            await asyncio.sleep(0.3)  # many rounds
    finally:
        program_module._programs[key] = saved
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
    worker = Worker(backend, grace=0.2)
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
    task = asyncio.create_task(Worker(backend).run())
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
