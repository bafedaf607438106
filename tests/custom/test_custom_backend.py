"""A custom backend as the original package's README has users write it: three async
methods over a dict and `asyncio.Event`s, its `wait_for_event` awaiting until the event
comes. It runs the Quick Start flow: pause, event, resume to ``hello Ada``."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import pytest

from durable import OrchestrationBackend, PauseForEventException, make_durable, wait_for_event

from .quickstart import durable_greet


class CustomBackend(OrchestrationBackend):
    def __init__(self) -> None:
        self.states: dict[str, dict[str, Any]] = {}
        self.events: dict[tuple[str, str], asyncio.Event] = defaultdict(asyncio.Event)
        self.payloads: dict[tuple[str, str], Any] = {}
        self.saves = 0

    async def load_state(self, instance_id: str) -> dict[str, Any] | None:
        return self.states.get(instance_id)

    async def save_state(self, instance_id: str, state: dict[str, Any]) -> None:
        await asyncio.sleep(0)  # as a real store would, on its connection
        self.states[instance_id] = state
        self.saves += 1

    async def wait_for_event(self, instance_id: str, event_name: str) -> Any:
        await self.events[(instance_id, event_name)].wait()
        del self.events[(instance_id, event_name)]  # consumed
        return self.payloads.pop((instance_id, event_name), None)

    def publish(self, instance_id: str, event_name: str, payload: Any = None) -> None:
        self.payloads[(instance_id, event_name)] = payload
        self.events[(instance_id, event_name)].set()


async def test_the_quick_start_runs_on_a_custom_backend_with_async_methods(capsys):
    backend = CustomBackend()
    with pytest.raises(PauseForEventException) as paused:
        await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert paused.value.event == "allow"
    assert backend.states["greet-1"]["status"] == "waiting"
    backend.publish("greet-1", "allow")
    result = await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert result == "hello Ada"
    assert capsys.readouterr().out == "waiting for permission to greet\n"
    assert backend.states["greet-1"]["status"] == "completed"


@make_durable
async def approval(request: str):
    decision = await wait_for_event("decision")
    return f"{request}: {decision}"


async def test_a_wait_for_event_that_blocks_is_asked_without_blocking_the_caller():
    backend = CustomBackend()
    with pytest.raises(PauseForEventException):
        await asyncio.wait_for(
            approval("r1", orchestration_backend=backend, instance_id="a-1"), timeout=2
        )
    with pytest.raises(PauseForEventException):  # still not there: pauses again
        await approval("r1", orchestration_backend=backend, instance_id="a-1")
    backend.publish("a-1", "decision", "approved")
    assert await approval("r1", orchestration_backend=backend, instance_id="a-1") == "r1: approved"


async def test_a_handle_over_an_async_backend_reads_its_status_and_result():
    backend = CustomBackend()
    handle = await approval.start("r2", instance_id="a-2", orchestration_backend=backend)
    assert await handle.status_async() == "enqueued"
    with pytest.raises(TypeError, match="status_async"):
        handle.status()
    with pytest.raises(PauseForEventException):
        await approval("r2", orchestration_backend=backend, instance_id="a-2")
    backend.publish("a-2", "decision", "no")
    assert await approval("r2", orchestration_backend=backend, instance_id="a-2") == "r2: no"
    assert await handle.result(timeout=1) == "r2: no"
