"""Workers over PostgreSQL, as real processes: three share 200 instances and one is killed
mid-run; a worker frozen (SIGSTOP) past its lease loses its instance to another worker, and
once thawed (SIGCONT) can store nothing of it."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time

import pytest

from durable import DurableBackend
from durable.stores.url import store_from_url
from durable.worker import Worker
from tests import postgres_server
from tests.worker import flows, pg_flows
from tests.worker.test_process import WorkerProcess, until
from tests.worker.test_worker import working

pytestmark = pytest.mark.slow

INSTANCES, STEPS = 200, 10


async def test_three_workers_one_killed_run_every_instance_once_and_each_effect_once(
    tmp_path, postgres_url, postgres_dsn, postgres_schema
):
    url = postgres_url + "&lease_seconds=1"
    store = store_from_url(url)
    backend = DurableBackend(store)
    table = f'"{postgres_schema}".ledger'
    pg_flows.create_ledger(postgres_dsn, table)
    ids = [f"i-{number:03d}" for number in range(INSTANCES)]
    handles = [
        await pg_flows.reconciled_steps.start(
            postgres_dsn, table, instance_id, STEPS,
            instance_id=instance_id, orchestration_backend=backend,
        )
        for instance_id in ids
    ]  # fmt: skip
    workers = [
        WorkerProcess(url, tmp_path / f"worker{n}.log", module="tests.worker.pg_flows")
        for n in range(3)
    ]
    ledger = pg_flows._ledger(postgres_dsn)

    def effects() -> int:
        return ledger.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    try:
        killed = workers[0].process.pid

        def effects_of_the_first() -> int:
            query = f"SELECT count(*) FROM {table} WHERE pid = %s"
            return ledger.execute(query, (killed,)).fetchone()[0]

        # Killed mid-run: it has done its share, and there is more for all of them.
        await until(lambda: effects_of_the_first() >= 30, timeout=60, what="its progress")
        assert effects() < INSTANCES * STEPS // 2
        workers[0].process.kill()
        for handle, instance_id in zip(handles, ids, strict=True):
            expected = [f"{instance_id}:{step}" for step in range(STEPS)]
            assert await handle.result(timeout=60) == expected
        for worker in workers[1:]:
            worker.process.send_signal(signal.SIGTERM)
            assert worker.wait() == 0, worker.text()
    finally:
        for worker in workers:
            worker.stop()
        store.close()

    rows = ledger.execute(
        f"SELECT instance_id, step, pid, fence FROM {table} ORDER BY instance_id, at"
    ).fetchall()
    # Each reconciled effect once: the step in flight at the kill was settled by its
    # reconciler, not run again.
    assert sorted((row[0], row[1]) for row in rows) == [
        (instance_id, step) for instance_id in ids for step in range(STEPS)
    ]
    # One runner at a time: along each instance's effects, in the order they happened, the
    # steps run in order and the fencing token never goes back (no worker acted on an
    # instance after another had taken it over).
    by_instance: dict[str, list] = {}
    for instance_id, step, pid, fence in rows:
        by_instance.setdefault(instance_id, []).append((step, pid, fence))
    for instance_id, effects_of in by_instance.items():
        assert [step for step, _, _ in effects_of] == list(range(STEPS)), instance_id
        fences = [fence for _, _, fence in effects_of]
        assert None not in fences and fences == sorted(fences), (instance_id, effects_of)
        runners = [pid for _, pid, _ in effects_of]
        changes = sum(1 for a, b in itertools.pairwise(runners) if a != b)
        assert changes <= 1 and (changes == 0 or runners[0] == killed), (instance_id, runners)
    taken_over = [i for i, e in by_instance.items() if e[0][1] == killed and e[-1][1] != killed]
    assert taken_over, "the killed worker left instances for the others to finish"


async def test_a_worker_frozen_past_its_lease_is_fenced_out_after_another_takes_over(
    tmp_path, postgres_url
):
    url = postgres_url + "&lease_seconds=1"
    store = store_from_url(url)
    backend = DurableBackend(store)
    ledger, started, release = (str(tmp_path / name) for name in ("ledger", "started", "release"))
    handle = await flows.two_steps.start(
        ledger, started, release, instance_id="f-1", orchestration_backend=backend
    )
    frozen = WorkerProcess(url, tmp_path / "frozen.log")
    other = None
    try:
        await until(lambda: len(flows.lines(started)) == 1, what="the first worker's step")
        frozen.process.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # past its lease: nothing renews it while the worker is stopped

        other = WorkerProcess(url, tmp_path / "other.log")
        # The other worker takes the instance over and runs its unfinished step again.
        await until(lambda: len(flows.lines(started)) == 2, what="the takeover")
        (tmp_path / "release").touch()
        assert await handle.result(timeout=10) == "released"

        frozen.process.send_signal(signal.SIGCONT)
        # Thawed, the first worker finishes its step and tries to store it: refused.
        await until(lambda: "lost to another runner" in frozen.text(), what="the refused write")
        time.sleep(0.5)
        assert flows.lines(ledger) == ["second"]  # the step after it ran once, by the other
        state = backend.read_state("f-1")
        assert state["status"] == "completed"
        for worker in (frozen, other):
            worker.process.send_signal(signal.SIGTERM)
            assert worker.wait() == 0, worker.text()
    finally:
        frozen.process.send_signal(signal.SIGCONT)
        frozen.stop()
        if other is not None:
            other.stop()
        store.close()
    assert "taken over" in frozen.text()


async def test_a_start_and_an_event_wake_an_idle_worker_at_once_not_at_its_next_poll(
    tmp_path, postgres_url
):
    store = store_from_url(postgres_url)
    backend = DurableBackend(store)
    # Polling every 30 s: only a notification can make it answer within seconds.
    worker = WorkerProcess(
        postgres_url, tmp_path / "worker.log", "--min-poll", "30", "--max-poll", "30"
    )
    try:
        worker.signal(0)  # started, and past its first round
        time.sleep(0.5)
        ledger = str(tmp_path / "ledger")
        handle = await flows.record.start(
            ledger, "a", instance_id="r-1", orchestration_backend=backend
        )
        assert await handle.result(timeout=3) == "recorded a"
        approval = await flows.approval.start(
            "deploy", instance_id="ap-1", orchestration_backend=backend
        )
        await until(lambda: approval.status() == "waiting", timeout=3, what="the wait")
        backend.publish_event("ap-1", "approve", {"by": "ops"})
        assert await approval.result(timeout=3) == "deploy approved by ops"
        worker.process.send_signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.text()
    finally:
        worker.stop()
        store.close()


async def test_runs_cut_by_a_server_restart_resume_and_complete_with_nothing_failed(
    tmp_path, postgres_url, postgres_dsn
):
    store = store_from_url(postgres_url)
    backend = DurableBackend(store)
    ledger, release = str(tmp_path / "ledger"), str(tmp_path / "release")
    worker = WorkerProcess(postgres_url, tmp_path / "worker.log")
    try:
        handles = [
            await flows.two_steps.start(
                ledger, str(tmp_path / f"started-{n}"), release,
                instance_id=f"t-{n}", orchestration_backend=backend,
            )
            for n in range(4)
        ]  # fmt: skip
        await until(
            lambda: all((tmp_path / f"started-{n}").exists() for n in range(4)),
            what="every run in its first step",
        )
        postgres_server.restart(postgres_dsn)  # every connection of the worker ends
        (tmp_path / "release").touch()
        for handle in handles:
            assert await handle.result(timeout=30) == "released"
        # Each first step finished, and was run again where its write was cut: the second
        # steps ran once each.
        assert flows.lines(ledger) == ["second"] * 4
        worker.process.send_signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.text()
    finally:
        worker.stop()
        store.close()
    assert not re.search(r"instance 't-\d' failed", worker.text()), worker.text()


async def test_an_instance_whose_inbox_holds_only_other_events_does_not_starve_a_worker(
    tmp_path, postgres_url
):
    """A one-slot worker claims the waiting instance (it has an event), finds the event is
    not the one awaited and gives it back; it is left out of the next claims, so the
    instance started after it runs."""
    store = store_from_url(postgres_url)
    backend = DurableBackend(store)
    try:
        waiting = await flows.approval.start("deploy", instance_id="ap-1",
                                             orchestration_backend=backend)  # fmt: skip
        async with working(Worker(backend, concurrency=1, min_poll=0.01, max_poll=0.05)):
            await until(lambda: waiting.status() == "waiting", what="the wait")
            backend.publish_event("ap-1", "unrelated", None)
            await asyncio.sleep(0.2)  # rounds that claim ap-1 and give it back
            late = await flows.record.start(
                str(tmp_path / "ledger"), "b", instance_id="r-1", orchestration_backend=backend
            )
            assert await late.result(timeout=5) == "recorded b"
            backend.publish_event("ap-1", "approve", {"by": "ops"})
            assert await waiting.result(timeout=5) == "deploy approved by ops"
    finally:
        store.close()
