"""Starting an instance without running it, and watching it through an `InstanceHandle`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from durable import (
    ArgumentsMismatchError,
    DiskStateStore,
    DurableBackend,
    DurableError,
    InMemoryStateStore,
    InstanceHandle,
)

from .start_flows import RUNS, double, refuse

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_runs():
    RUNS.clear()


@pytest.fixture
def backend() -> DurableBackend:
    return DurableBackend(InMemoryStateStore())


async def test_start_saves_an_enqueued_instance_without_running_it(backend):
    handle = await double.start(21, instance_id="d1", orchestration_backend=backend)
    assert isinstance(handle, InstanceHandle)
    assert handle.status() == "enqueued"
    assert RUNS == []


async def test_a_call_runs_a_started_instance_from_the_start(backend):
    handle = await double.start(21, instance_id="d1", orchestration_backend=backend)
    assert await double(21, orchestration_backend=backend, instance_id="d1") == 42
    assert RUNS == [("double", 21)]
    assert handle.status() == "completed"
    assert await handle.result() == 42


async def test_starting_again_with_the_same_arguments_changes_nothing(backend):
    await double.start(21, instance_id="d1", orchestration_backend=backend)
    records = backend.store.read_records("d1")
    again = await double.start(value=21, instance_id="d1", orchestration_backend=backend)
    assert again.status() == "enqueued"
    assert backend.store.read_records("d1") == records


async def test_starting_with_other_arguments_is_refused_and_changes_nothing(backend):
    await double.start(21, instance_id="d1", orchestration_backend=backend)
    records = backend.store.read_records("d1")
    with pytest.raises(ArgumentsMismatchError, match="'d1'.*21.*22"):
        await double.start(22, instance_id="d1", orchestration_backend=backend)
    assert backend.store.read_records("d1") == records


async def test_starting_a_finished_instance_returns_its_handle(backend):
    assert await double(4, orchestration_backend=backend, instance_id="d1") == 8
    handle = await double.start(4, instance_id="d1", orchestration_backend=backend)
    assert await handle.result() == 8
    assert RUNS == [("double", 4)]


async def test_a_handle_waits_for_a_run_that_happens_elsewhere(backend):
    handle = await double.start(5, instance_id="d1", orchestration_backend=backend)

    async def run_later():
        await asyncio.sleep(0.05)
        await double(5, orchestration_backend=backend, instance_id="d1")

    runner = asyncio.create_task(run_later())
    assert await handle.result(poll_interval=0.01) == 10
    await runner


async def test_a_handle_raises_the_exception_of_a_failed_instance(backend):
    with pytest.raises(LookupError):
        await refuse("no stock", orchestration_backend=backend, instance_id="r1")
    with pytest.raises(LookupError, match="no stock"):
        await refuse.handle("r1", orchestration_backend=backend).result()


async def test_a_handle_result_times_out_while_the_instance_has_not_run(backend):
    handle = await double.start(5, instance_id="d1", orchestration_backend=backend)
    with pytest.raises(TimeoutError, match="'d1' is still enqueued"):
        await handle.result(timeout=0.05, poll_interval=0.01)


async def test_a_handle_of_an_unknown_instance_says_so(backend):
    handle = double.handle("never-started", orchestration_backend=backend)
    assert handle.status() is None
    with pytest.raises(DurableError, match="'never-started' does not exist"):
        await handle.result()


def test_a_handle_refuses_a_bad_instance_id(backend):
    with pytest.raises(ValueError, match="invalid instance_id"):
        InstanceHandle("../escape", backend)


async def test_start_refuses_a_bad_instance_id(backend):
    with pytest.raises(ValueError, match="invalid instance_id"):
        await double.start(1, instance_id="a/b", orchestration_backend=backend)


async def test_an_instance_started_here_is_run_by_another_process(tmp_path):
    store_dir = str(tmp_path / "store")
    backend = DurableBackend(DiskStateStore(store_dir))
    handle = await double.start(7, instance_id="d1", orchestration_backend=backend)
    finished = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tests.runtime.start_flows import run_in_this_process; "
            "run_in_this_process(sys.argv[1], 'd1', 7)",
            store_dir,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "14"
    assert await handle.result(timeout=5) == 14
    assert RUNS == []  # it ran in the other process only


async def test_watching_a_handle_does_not_disturb_a_waiting_instance(backend):
    from durable import PauseForEventException, make_durable, wait_for_event

    @make_durable
    async def ask():
        return await wait_for_event("answer")

    with pytest.raises(PauseForEventException):
        await ask(orchestration_backend=backend, instance_id="q")
    backend.publish_event("q", "answer", 42)
    handle = ask.handle("q", orchestration_backend=backend)
    assert handle.status() == "waiting"
    assert await ask(orchestration_backend=backend, instance_id="q") == 42
    assert handle.status() == "completed"


async def test_a_stored_instance_runs_from_its_id_alone_with_its_stored_arguments(backend):
    from durable.runtime.backend import runtime_for

    await double.start(value=6, instance_id="d1", orchestration_backend=backend)
    assert await runtime_for(backend).resume_stored("d1") == 12
    assert RUNS == [("double", 6)]


async def test_resuming_an_unknown_stored_instance_says_so(backend):
    from durable.runtime.backend import runtime_for

    with pytest.raises(DurableError, match="'nope' does not exist"):
        await runtime_for(backend).resume_stored("nope")
