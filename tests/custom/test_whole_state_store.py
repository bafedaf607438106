"""A store of the original package's two methods, `load` and `save` (plain or async), works
through `DurableBackend` as a whole-state store, through the Quick Start flow."""

from __future__ import annotations

import asyncio
import copy
import pickle
from typing import Any

import pytest

from durable import (
    DurableBackend,
    PauseForEventException,
    StateStore,
    durable_execute,
    make_durable,
)
from tests.crashing import SimulatedCrash

from .quickstart import durable_greet


class DictStore(StateStore):
    """Keeps pickled states in a dict, as a file or a key-value store would."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}
        self.saves = 0
        self.crash_at: int | None = None

    def load(self, instance_id: str) -> dict[str, Any] | None:
        data = self.saved.get(instance_id)
        return None if data is None else pickle.loads(data)

    def save(self, instance_id: str, state: dict[str, Any]) -> None:
        self.saves += 1
        if self.saves == self.crash_at:
            raise SimulatedCrash(f"before save {self.saves}")
        self.saved[instance_id] = pickle.dumps(state)


class AsyncDictStore(StateStore):
    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}

    async def load(self, instance_id: str) -> dict[str, Any] | None:
        await asyncio.sleep(0)
        return copy.deepcopy(self.saved.get(instance_id))

    async def save(self, instance_id: str, state: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.saved[instance_id] = copy.deepcopy(state)


async def test_the_quick_start_runs_on_a_two_method_store(capsys):
    backend = DurableBackend(DictStore())
    with pytest.raises(PauseForEventException) as paused:
        await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert paused.value.event == "allow"
    backend.publish_event("greet-1", "allow")
    result = await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert result == "hello Ada"
    assert capsys.readouterr().out == "waiting for permission to greet\n"


async def test_the_quick_start_runs_on_a_two_method_async_store():
    store = AsyncDictStore()
    backend = DurableBackend(store)
    with pytest.raises(PauseForEventException):
        await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    await backend.publish_event("greet-1", "allow")
    assert await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1") == (
        "hello Ada"
    )
    assert store.saved["greet-1"]["status"] == "completed"
    assert store.saved["greet-1/events"]["pending"] == []  # the event was consumed


def test_a_two_method_store_is_a_whole_state_store():
    store = DictStore()
    assert store.whole_state
    assert type(DurableBackend(store)).__name__ == "WholeStateBackend"
    with pytest.raises(TypeError, match="whole-state store .* no read_records"):
        store.read_records("x")
    with pytest.raises(ValueError, match="cannot be signed"):
        DurableBackend(store, secret_key=b"k" * 32)


CHARGED: list = []


def charge(amount: int) -> str:
    CHARGED.append(amount)
    return f"receipt {amount}"


@make_durable
async def pay(amount: int):
    receipt = await durable_execute(charge, amount)
    confirmed = await durable_execute(charge, -amount)
    raise PauseForEventException("done")
    return receipt, confirmed


async def test_each_durable_write_saves_the_whole_state_and_a_crash_resumes_from_it():
    CHARGED.clear()
    store = DictStore()
    store.crash_at = 3  # the start, the first charge; the crash comes at the second's save
    with pytest.raises(SimulatedCrash):
        await pay(5, orchestration_backend=DurableBackend(store), instance_id="p1")
    assert CHARGED == [5, -5]
    store.crash_at = None
    with pytest.raises(PauseForEventException):
        await pay(5, orchestration_backend=DurableBackend(store), instance_id="p1")
    assert CHARGED == [5, -5, -5]  # the first charge was journaled; the second re-ran
    backend = DurableBackend(store)
    backend.publish_event("p1", "done")
    assert await pay(5, orchestration_backend=backend, instance_id="p1") == (
        "receipt 5",
        "receipt -5",
    )
    assert backend.pending_events("p1") == []
