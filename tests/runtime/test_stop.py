"""Stopping runs on request (a worker shutting down): at the next operation, or at once."""

from __future__ import annotations

import asyncio

import pytest

from durable import DurableBackend, InMemoryStateStore, durable_execute, make_durable, sleep
from durable._errors import RunStoppedError
from durable.runtime.backend import runtime_for

STEPS: list = []
BACKEND: list = []


def step(name: str) -> str:
    STEPS.append(name)
    if name in ("two", "a-two"):
        runtime_for(BACKEND[0]).request_stop()
    return name


@make_durable
async def three_steps() -> list:
    done = []
    for name in ("one", "two", "three"):
        done.append(await durable_execute(step, name))
    return done


@pytest.fixture(autouse=True)
def fresh():
    STEPS.clear()
    BACKEND.clear()
    BACKEND.append(DurableBackend(InMemoryStateStore()))


async def test_a_stop_request_lets_the_operation_in_progress_finish_and_starts_no_other():
    with pytest.raises(RunStoppedError, match="'s1' stopped on request"):
        await three_steps(orchestration_backend=BACKEND[0], instance_id="s1")
    assert STEPS == ["one", "two"]


async def test_a_stopped_instance_resumes_after_its_last_operation():
    with pytest.raises(RunStoppedError):
        await three_steps(orchestration_backend=BACKEND[0], instance_id="s1")
    STEPS.clear()
    resumed = DurableBackend(BACKEND[0].store)
    assert await three_steps(orchestration_backend=resumed, instance_id="s1") == [
        "one",
        "two",
        "three",
    ]
    assert STEPS == ["three"]


FINALLY: list = []


@make_durable
async def long_nap() -> str:
    try:
        await sleep(30)
    finally:
        FINALLY.append("left the nap")
    return "rested"


async def test_an_abandoned_run_cancelled_mid_sleep_runs_no_finally_and_resumes_later():
    backend = BACKEND[0]
    task = asyncio.create_task(long_nap(orchestration_backend=backend, instance_id="n1"))
    await asyncio.sleep(0.05)
    runtime_for(backend).abandon()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert FINALLY == []
    state = DurableBackend(backend.store).read_state("n1")
    assert state["status"] == "running"
    assert DurableBackend(backend.store).acquire_instance("n1") is None


async def two_steps(prefix: str) -> list:
    return [await durable_execute(step, f"{prefix}-{n}") for n in ("one", "two", "three")]


@make_durable
async def steps_in_a_gather() -> list:
    return await asyncio.gather(two_steps("a"), two_steps("b"))


async def test_a_stop_request_in_a_gather_stops_every_branch_and_the_instance_resumes():
    with pytest.raises(RunStoppedError):
        await steps_in_a_gather(orchestration_backend=BACKEND[0], instance_id="s1")
    before = list(STEPS)
    assert "a-three" not in before and "b-three" not in before
    resumed = DurableBackend(BACKEND[0].store)
    assert await steps_in_a_gather(orchestration_backend=resumed, instance_id="s1") == [
        ["a-one", "a-two", "a-three"],
        ["b-one", "b-two", "b-three"],
    ]
    assert sorted(STEPS) == sorted(["a-one", "a-two", "a-three", "b-one", "b-two", "b-three"])
