"""Snapshots: what a saved call stack holds."""

from __future__ import annotations

import pickle
import pickletools

import pytest

from durable import (
    DurableBackend,
    InMemoryStateStore,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.runtime import references
from durable.runtime.frames import STACK_FORMAT
from tests.crashing import CountsWrites, SimulatedCrash, WriteCounter

LOG: list[int] = []


def add_one(i):
    LOG.append(i)
    return i + 1


@make_durable
async def counting(n):
    total = 0
    for i in range(n):
        total += await durable_execute(add_one, i)
        if i == 1:
            await wait_for_event("go")
    return total


class CrashingStore(CountsWrites, InMemoryStateStore):
    def __init__(self) -> None:
        super().__init__()
        self.counter = WriteCounter()


async def test_a_snapshot_after_a_step_names_no_class_or_function():
    store = CrashingStore()
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await counting(4, orchestration_backend=DurableBackend(store), instance_id="c")
    snapshot = DurableBackend(store).load_state("c")["snapshot"]
    opcodes = {opcode.name for opcode, _, _ in pickletools.genops(snapshot)}
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "NEWOBJ"}
    assert pickle.loads(snapshot)[0] == STACK_FORMAT


@pytest.mark.parametrize("numbers", [(0, 5, 1), (3, 10, 3), (10, -4, -4), (0, 0, 1)])
def test_a_range_iterator_is_saved_as_numbers_that_rebuild_it_at_every_position(numbers):
    for consumed in range(len(range(*numbers)) + 1):
        iterator = iter(range(*numbers))
        for _ in range(consumed):
            next(iterator)
        rebuilt = references.range_iterator(*references.range_numbers(iterator))
        assert list(rebuilt) == list(iterator)
