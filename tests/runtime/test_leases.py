"""One runner per instance, across backends and processes: leases in the stores."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    InstanceBusyError,
    PauseForEventException,
    SQLiteStateStore,
    make_durable,
    wait_for_event,
)
from durable.stores import store_from_url

ROOT = Path(__file__).resolve().parents[2]
RUNNER = "import sys; from tests.runtime.lease_flows import main; main(*sys.argv[1:4])"


@make_durable
async def slow(gate_name: str) -> str:
    await GATES[gate_name].wait()
    return "finished"


@make_durable
async def ask() -> str:
    return await wait_for_event("answer")


@make_durable
async def broken() -> None:
    raise KeyError("broken")


GATES: dict[str, asyncio.Event] = {}


def make_store(kind: str, tmp_path: Path):
    if kind == "memory":
        return InMemoryStateStore()
    if kind == "disk":
        return DiskStateStore(tmp_path / "store")
    return SQLiteStateStore(tmp_path / "store.db")


@pytest.mark.parametrize("kind", ["memory", "disk", "sqlite"])
async def test_a_second_backend_over_the_same_store_gets_instance_busy(tmp_path, kind):
    store = make_store(kind, tmp_path)
    GATES["g"] = asyncio.Event()
    first = asyncio.create_task(
        slow("g", orchestration_backend=DurableBackend(store), instance_id="job-1")
    )
    await asyncio.sleep(0.05)
    records = store.read_records("job-1")
    with pytest.raises(InstanceBusyError, match="'job-1' is being run by another runner"):
        await slow("g", orchestration_backend=DurableBackend(store), instance_id="job-1")
    assert store.read_records("job-1") == records
    GATES["g"].set()
    assert await first == "finished"


@pytest.mark.parametrize("kind", ["memory", "disk", "sqlite"])
async def test_the_lease_ends_when_the_instance_pauses(tmp_path, kind):
    store = make_store(kind, tmp_path)
    with pytest.raises(PauseForEventException):
        await ask(orchestration_backend=DurableBackend(store), instance_id="q")
    other = DurableBackend(store)
    other.publish_event("q", "answer", 42)
    assert await ask(orchestration_backend=other, instance_id="q") == 42


@pytest.mark.parametrize("kind", ["memory", "disk", "sqlite"])
async def test_the_lease_ends_when_the_instance_fails(tmp_path, kind):
    store = make_store(kind, tmp_path)
    with pytest.raises(KeyError):
        await broken(orchestration_backend=DurableBackend(store), instance_id="b")
    with pytest.raises(KeyError):
        await broken(orchestration_backend=DurableBackend(store), instance_id="b")


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="this system has no posix_fallocate")
async def test_a_disk_log_holds_reserved_space_only_while_its_instance_runs(tmp_path):
    from durable.stores.disk import frame

    store = DiskStateStore(tmp_path / "store")
    log = tmp_path / "store" / "state" / "job-1.log"

    def records_length(instance_id: str) -> int:
        return sum(len(frame(record)) for record in store.read_records(instance_id))

    GATES["g"] = asyncio.Event()
    running = asyncio.create_task(
        slow("g", orchestration_backend=DurableBackend(store), instance_id="job-1")
    )
    await asyncio.sleep(0.05)
    assert log.stat().st_size > records_length("job-1")
    GATES["g"].set()
    assert await running == "finished"
    assert log.stat().st_size == records_length("job-1")
    with pytest.raises(PauseForEventException):
        await ask(orchestration_backend=DurableBackend(store), instance_id="q")
    paused = tmp_path / "store" / "state" / "q.log"
    assert paused.stat().st_size == records_length("q")


def test_a_disk_lease_names_who_holds_it(tmp_path):
    store = DiskStateStore(tmp_path / "store")
    assert store.acquire_lease("job-1", "runner A") is None
    holder = DiskStateStore(tmp_path / "store").acquire_lease("job-1", "runner B")
    assert holder is not None and "runner A" in holder and str(os.getpid()) in holder
    store.release_lease("job-1", "runner A")
    assert DiskStateStore(tmp_path / "store").acquire_lease("job-1", "runner B") is None


def run_job(store_url: str, started: Path, release: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER, store_url, str(started), str(release)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the runner did not start"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["disk", "sqlite"])
def test_a_second_process_is_refused_while_the_first_runs_and_takes_over_after_a_kill(
    tmp_path, kind
):
    store_url = f"file://{tmp_path / 'store'}" if kind == "disk" else f"sqlite:///{tmp_path}/s.db"
    started, release = tmp_path / "started", tmp_path / "release"
    first = run_job(store_url, started, release)
    try:
        wait_for(started, first)
        records = store_from_url(store_url).read_records("job-1")

        second = run_job(store_url, tmp_path / "second-started", release)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 3, err
        assert "busy: instance 'job-1' is being run by another runner" in out
        assert not (tmp_path / "second-started").exists()
        assert store_from_url(store_url).read_records("job-1") == records

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        started.unlink()
        release.touch()
        third = run_job(store_url, started, release)
        out, err = third.communicate(timeout=60)
        assert third.returncode == 0, err
        assert out.strip() == "done: released"
    finally:
        if first.poll() is None:
            first.kill()
