"""Group commit: the record writes of concurrent coroutines share SQLite transactions, and no
write is acknowledged before the transaction holding it has committed."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from durable import DurableBackend, SQLiteStateStore, durable_execute, make_durable
from durable.stores.base import InstanceSummary


@pytest.fixture
def store(tmp_path):
    store = SQLiteStateStore(tmp_path / "store.db", group_commit=True)
    yield store
    store.close()


def count_commits(store: SQLiteStateStore) -> list[str]:
    commits: list[str] = []
    store._db().set_trace_callback(
        lambda statement: commits.append(statement) if statement == "COMMIT" else None
    )
    return commits


def add(i: int) -> int:
    return i + 1


@make_durable
async def steps(count: int) -> int:
    total = 0
    for i in range(count):
        total += await durable_execute(add, i)
    return total


async def test_concurrent_instances_finish_with_their_writes_in_shared_transactions(store):
    commits = count_commits(store)
    backend = DurableBackend(store)
    results = await asyncio.gather(
        *(steps(5, orchestration_backend=backend, instance_id=f"i{n}") for n in range(16))
    )
    assert results == [15] * 16
    writes = 16 * (1 + 5 + 1)  # start, five steps, completion
    assert len(commits) < writes / 2
    for n in range(16):
        assert DurableBackend(store).read_state(f"i{n}")["status"] == "completed"


async def test_a_write_is_not_acknowledged_before_its_transaction_commits(store):
    store.append_record("held", b"first")  # no running loop needed for a plain write
    store._lock.acquire()  # the committer cannot begin its transaction
    try:
        pending = store.append_record("held", b"second")
        assert pending is not None
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pending), timeout=0.2)
    finally:
        store._lock.release()
    await asyncio.wait_for(pending, timeout=10)
    assert SQLiteStateStore(store.path).read_records("held") == [b"first", b"second"]


def test_without_a_running_event_loop_a_write_is_made_at_once(store):
    assert store.append_record("sync", b"record") is None
    assert store.replace_records("sync", [b"compacted"]) is None
    assert SQLiteStateStore(store.path).read_records("sync") == [b"compacted"]


async def test_a_write_that_fails_fails_alone_and_the_others_of_its_batch_commit(store):
    store._db().setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    store._lock.acquire()  # queue all three before the committer takes any
    try:
        good = store.append_record("a", b"fits")
        bad = store.append_record("b", b"x" * 5000)
        also_good = store.append_record("c", b"fits too")
    finally:
        store._lock.release()
    await good
    await also_good
    with pytest.raises(sqlite3.DataError):
        await bad
    assert store.read_records("a") == [b"fits"]
    assert store.read_records("b") == []
    assert store.read_records("c") == [b"fits too"]


def test_a_fault_point_kills_the_process_only_after_the_transaction_commits(tmp_path):
    script = textwrap.dedent(
        f"""
        import asyncio
        from durable import SQLiteStateStore
        store = SQLiteStateStore({str(tmp_path / "store.db")!r}, group_commit=True)
        async def main():
            for n in range(1, 6):
                await store.append_record("job", f"record {{n}}".encode())
        asyncio.run(main())
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", script],
        env={"DURABLE_FAULT": "after:3", "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == -9, finished.stderr
    records = SQLiteStateStore(tmp_path / "store.db").read_records("job")
    assert records == [b"record 1", b"record 2", b"record 3"]


def test_closing_the_store_stops_its_committer(tmp_path):
    store = SQLiteStateStore(tmp_path / "store.db", group_commit=True)

    async def write():
        await store.append_record("job", b"record")

    asyncio.run(write())
    committer = store._committer
    assert committer is not None and committer.alive()
    store.close()
    assert not committer.alive()


async def test_a_batch_mixing_steps_and_status_changes_keeps_each_instances_summary(store):
    # Each instance's row is updated in its writes' order, whichever statement a write uses
    # (a step changes only the time; a status change sets the summary and the head).
    summary = InstanceSummary("sleeping", None, 123.0)
    store._lock.acquire()  # queue every write before the committer takes any
    try:
        written = [
            store.append_record("a", b"start", summary, head=b"head-a"),
            store.append_record("b", b"step"),
            store.append_record("a", b"step"),
            store.append_record("b", b"parked", InstanceSummary("waiting", "approval", None)),
            store.append_record("c", b"step"),
        ]
    finally:
        store._lock.release()
    await asyncio.gather(*written)
    assert store.summary("a") == summary and store.read_head("a") == b"head-a"
    assert store.summary("b") == InstanceSummary("waiting", "approval", None)
    assert store.summary("c") is None  # a row with no summary known yet
    assert store.read_records("a") == [b"start", b"step"]


CALLS: list[int] = []


def counted_add(i: int) -> int:
    CALLS.append(i)
    return i + 1


@make_durable
async def two_steps() -> int:
    first = await durable_execute(counted_add, 1)
    return first + await durable_execute(counted_add, 2)


async def test_a_run_cancelled_while_its_write_commits_stops_once_the_write_is_in(store):
    # The run ends only once the write it made has committed (its future cannot be
    # cancelled), so the resumed instance does not run the step again.
    CALLS.clear()
    backend = DurableBackend(store)
    await two_steps.start(orchestration_backend=backend, instance_id="cancelled")
    store._lock.acquire()  # the committer cannot commit the first step's write yet
    try:
        run = asyncio.create_task(two_steps(orchestration_backend=backend, instance_id="cancelled"))
        while CALLS != [1]:
            await asyncio.sleep(0.01)
        run.cancel()
        await asyncio.sleep(0.2)
        assert not run.done(), "the run stopped before its write had committed"
    finally:
        store._lock.release()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert (
        await two_steps(orchestration_backend=DurableBackend(store), instance_id="cancelled") == 5
    )
    assert CALLS == [1, 2]
