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
from durable.runtime import backend as backend_module
from durable.runtime import references
from durable.runtime.frames import STACK_FORMAT
from durable.runtime.journal import SUCCEEDED, args_digest
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


async def crashed_after_first_step() -> CrashingStore:
    store = CrashingStore()
    store.counter.crash_after = 2  # the start, then the first step
    with pytest.raises(SimulatedCrash):
        await counting(4, orchestration_backend=DurableBackend(store), instance_id="c")
    return store


async def test_a_snapshot_after_a_step_is_plain_data_naming_no_class_or_function():
    store = await crashed_after_first_step()
    snapshot = DurableBackend(store).load_state("c")["snapshot"]
    assert type(snapshot) is tuple and snapshot[0] == STACK_FORMAT
    opcodes = {opcode.name for opcode, _, _ in pickletools.genops(pickle.dumps(snapshot))}
    assert not opcodes & {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "NEWOBJ"}


async def test_a_step_is_written_as_one_flat_record_read_back_as_its_changes():
    store = await crashed_after_first_step()
    step = store.read_records("c")[-1]
    assert pickle.loads(step)[0] == backend_module.STEP_RECORD_FORMAT
    changes = backend_module._decode("c", step)
    assert backend_module._decode("c", backend_module._encode(changes)) == changes
    assert pickle.loads(backend_module._encode(changes)) == pickle.loads(step)
    ((seq, entry),) = changes["entries"].items()
    assert entry == {
        "function_id": f"{__name__}.add_one",
        "args_digest": args_digest((0,), {}),
        "status": SUCCEEDED,
        "value": 1,
    }
    assert changes["set"]["snapshot"][1][0][6] == ("at", seq, None)


#: A frame record as a step's snapshot holds it.
FRAME = ("m:flow", "f" * 64, 1, 4, {"total": 3}, None, ("at", 2, None), None)


@pytest.mark.parametrize(
    "change",
    [
        lambda changes: changes["entries"][2].update(attempts=2),
        lambda changes: changes["set"].update(status="running"),
        lambda changes: changes.update(code_versions={}),
        lambda changes: changes["set"].update(snapshot=b"pickled elsewhere"),
    ],
    ids=["a retried call", "a status", "code versions", "a pickled snapshot"],
)
def test_other_writes_keep_the_general_record(change):
    changes = {
        "set": {"updated_at": 1.0, "next_seq": 3, "snapshot": (STACK_FORMAT, (FRAME,))},
        "entries": {
            2: {"function_id": "m.f", "args_digest": "0" * 16, "status": "SUCCEEDED", "value": 5}
        },
        "prune_below": 2,
    }
    assert pickle.loads(backend_module._encode(changes))[0] == backend_module.STEP_RECORD_FORMAT
    change(changes)
    data = backend_module._encode(changes)
    assert pickle.loads(data)[0] == backend_module.RECORD_FORMAT
    assert backend_module._decode("i", data) == changes


async def test_a_stack_saved_as_a_pickle_by_an_earlier_version_resumes():
    store = await crashed_after_first_step()
    backend = DurableBackend(store)
    state = backend.load_state("c")
    state["snapshot"] = references.dumps(state["snapshot"])
    backend.save_state("c", state)
    backend.publish_event("c", "go")
    LOG.clear()
    assert await counting(4, orchestration_backend=backend, instance_id="c") == 10
    assert LOG == [1, 2, 3]


@pytest.mark.parametrize("numbers", [(0, 5, 1), (3, 10, 3), (10, -4, -4), (0, 0, 1)])
def test_a_range_iterator_is_saved_as_numbers_that_rebuild_it_at_every_position(numbers):
    for consumed in range(len(range(*numbers)) + 1):
        iterator = iter(range(*numbers))
        for _ in range(consumed):
            next(iterator)
        rebuilt = references.range_iterator(*references.range_numbers(iterator))
        assert list(rebuilt) == list(iterator)
