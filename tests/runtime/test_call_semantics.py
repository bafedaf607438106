"""DESIGN §2: what calling a durable program does, for each stored state of the instance."""

from __future__ import annotations

import asyncio

import pytest

from durable import (
    ArgumentsMismatchError,
    DiskStateStore,
    DurableBackend,
    InstanceBusyError,
    PauseForEventException,
    make_durable,
)

RUNS: list[str] = []


@make_durable
async def approve(order: str, amount: int = 1):
    RUNS.append(f"start {order}")
    raise PauseForEventException("approved")
    RUNS.append(f"approved {order}")
    return {"order": order, "amount": amount}


@make_durable
async def explode(reason: str):
    RUNS.append("explode")
    raise ValueError(reason)


@pytest.fixture(autouse=True)
def clear_runs():
    RUNS.clear()


@pytest.fixture
def backend(tmp_path):
    return DurableBackend(DiskStateStore(tmp_path))


async def pause(program, *args, backend, instance_id, **kwargs) -> str:
    with pytest.raises(PauseForEventException) as caught:
        await program(*args, orchestration_backend=backend, instance_id=instance_id, **kwargs)
    assert caught.value.instance_id == instance_id
    return caught.value.event


async def test_no_stored_state_starts_a_new_instance(backend):
    assert await pause(approve, "o1", backend=backend, instance_id="i1") == "approved"
    assert RUNS == ["start o1"]
    assert backend.load_state("i1")["status"] == "waiting"


async def test_waiting_for_an_event_that_has_not_arrived_raises_at_once_and_runs_nothing(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    saved = backend.store.read_records("i1")
    assert await pause(approve, "o1", backend=backend, instance_id="i1") == "approved"
    assert RUNS == ["start o1"]
    assert backend.store.read_records("i1") == saved


async def test_waiting_for_an_event_that_arrived_consumes_it_and_resumes_after_the_wait(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    backend.publish_event("i1", "approved")
    result = await approve("o1", orchestration_backend=backend, instance_id="i1")
    assert result == {"order": "o1", "amount": 1}
    assert RUNS == ["start o1", "approved o1"]
    assert backend.pending_events("i1") == []


async def test_resume_works_from_a_new_backend_over_the_same_store(tmp_path):
    await pause(approve, "o1", backend=DurableBackend(DiskStateStore(tmp_path)), instance_id="i1")
    DurableBackend(DiskStateStore(tmp_path)).publish_event("i1", "approved")
    fresh = DurableBackend(DiskStateStore(tmp_path))
    assert (await approve("o1", orchestration_backend=fresh, instance_id="i1"))["order"] == "o1"
    assert RUNS == ["start o1", "approved o1"]


async def test_completed_instance_returns_the_stored_result_and_runs_nothing(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    backend.publish_event("i1", "approved")
    first = await approve("o1", orchestration_backend=backend, instance_id="i1")
    RUNS.clear()
    again = await approve("o1", orchestration_backend=backend, instance_id="i1")
    assert again == first
    assert RUNS == []


async def test_failed_instance_raises_the_stored_exception_and_runs_nothing(backend):
    with pytest.raises(ValueError, match="out of stock"):
        await explode("out of stock", orchestration_backend=backend, instance_id="x")
    assert backend.load_state("x")["status"] == "failed"
    with pytest.raises(ValueError, match="out of stock"):
        await explode("out of stock", orchestration_backend=backend, instance_id="x")
    assert RUNS == ["explode"]


async def test_running_instance_without_live_owner_resumes_from_its_snapshot(tmp_path):
    @make_durable
    async def two_steps(n):
        RUNS.append("first")
        await step(n)
        RUNS.append("second")
        return n

    store = DiskStateStore(tmp_path)
    backend = DurableBackend(store)
    await pause(two_steps, 1, backend=backend, instance_id="r")
    # Pretend the process died after the nested call's entry checkpoint: state is 'running'.
    state = backend.load_state("r")
    state["status"] = "running"
    state["waiting_for"] = None
    backend.save_state("r", state)
    RUNS.clear()
    DurableBackend(store).publish_event("r", "stepped")
    assert await two_steps(1, orchestration_backend=DurableBackend(store), instance_id="r") == 1
    assert RUNS == ["step done", "second"]


@make_durable
async def step(n):
    raise PauseForEventException("stepped")
    RUNS.append("step done")
    return n


async def test_instance_owned_by_a_live_runner_is_busy_and_never_runs_twice(backend):
    started = asyncio.Event()
    release = asyncio.Event()

    async def hold():
        started.set()
        await release.wait()

    @make_durable
    async def slow():
        RUNS.append("slow")
        await hold()
        return "done"

    first = asyncio.create_task(slow(orchestration_backend=backend, instance_id="busy"))
    await started.wait()
    with pytest.raises(InstanceBusyError, match="'busy'"):
        await slow(orchestration_backend=backend, instance_id="busy")
    release.set()
    assert await first == "done"
    assert RUNS == ["slow"]


async def test_other_arguments_than_the_stored_ones_are_refused_and_change_nothing(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    saved = backend.store.read_records("i1")
    with pytest.raises(ArgumentsMismatchError, match="'i1'"):
        await approve("o2", orchestration_backend=backend, instance_id="i1")
    assert backend.store.read_records("i1") == saved
    assert RUNS == ["start o1"]


async def test_same_arguments_in_another_form_are_accepted(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    assert await pause(approve, order="o1", amount=1, backend=backend, instance_id="i1")


async def test_another_program_under_the_same_instance_id_is_refused(backend):
    await pause(approve, "o1", backend=backend, instance_id="i1")
    with pytest.raises(ArgumentsMismatchError, match="belongs to durable function"):
        await explode("x", orchestration_backend=backend, instance_id="i1")


async def test_returned_values_of_any_kind_come_back_as_they_were(backend):
    for index, value in enumerate([0, "", None, (), (1, 2), [0], False]):

        @make_durable
        async def give(v):
            raise PauseForEventException("go")
            return v

        instance = f"v{index}"
        await pause(give, value, backend=backend, instance_id=instance)
        backend.publish_event(instance, "go")
        assert await give(value, orchestration_backend=backend, instance_id=instance) == value


async def test_without_a_backend_the_process_default_is_used():
    from durable import default_backend

    await pause(approve, "d1", backend=None, instance_id="default-1")
    default_backend().publish_event("default-1", "approved")
    assert (await approve("d1", instance_id="default-1"))["order"] == "d1"
