"""Snapshots: what a saved call stack holds."""

from __future__ import annotations

import pickle
import pickletools

import pytest

from durable import (
    DurableBackend,
    InMemoryStateStore,
    PauseForEventException,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.runtime import backend as backend_module
from durable.runtime import references
from durable.runtime.frames import STACK_FORMAT, saved_stack
from durable.runtime.journal import SUCCEEDED, args_digest
from durable.runtime.runtime import StepWrite
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


def record_formats(store: InMemoryStateStore, instance_id: str) -> list[int]:
    return [pickle.loads(record)[0] for record in store.read_records(instance_id)]


async def test_a_step_is_written_as_one_flat_record_read_back_as_its_changes():
    store = await crashed_after_first_step()
    step = store.read_records("c")[-1]
    record = pickle.loads(step)
    assert record[0] == backend_module.STEP_RECORD_FORMAT
    changes = backend_module._decode("c", step)
    assert changes == StepWrite._make(record[1:]).changes()
    ((seq, entry),) = changes["entries"].items()
    started_at = entry.pop("started_at")
    assert entry == {
        "function_id": f"{__name__}.add_one",
        "args_digest": args_digest((0,), {}),
        "status": SUCCEEDED,
        "value": 1,
    }
    assert started_at <= changes["set"]["updated_at"]
    assert changes["set"]["snapshot"][1][0][6] == ("at", seq, None)
    assert changes["prune_below"] == seq


def fetch(order):
    return {"order": order, "lines": [order, order + 1]}


@make_durable
async def collecting(n):
    fetched = []
    for order in range(n):
        fetched.append(await durable_execute(fetch, order))
    return fetched


@make_durable
async def nesting(n):
    return await collecting(n) + [await durable_execute(add_one, n)]


@pytest.mark.parametrize(
    ("program", "expected", "general_steps"),
    [
        (collecting, [fetch(0), fetch(1), fetch(2)], 0),
        # The first write with the nested frame also saves its code's version.
        (nesting, [fetch(0), fetch(1), fetch(2), 4], 1),
    ],
    ids=["objects in the frame and the result", "a nested durable call"],
)
async def test_every_settled_call_is_a_step_record_and_resumes_from_it(
    program, expected, general_steps
):
    # Locals that are not leaf values (a pickled snapshot), a pickled result and a stack
    # of two frames are step records too; a crash after each write resumes to the result.
    store = CrashingStore()
    await program(3, orchestration_backend=DurableBackend(store), instance_id="whole")
    step, general = backend_module.STEP_RECORD_FORMAT, backend_module.RECORD_FORMAT
    steps = len(expected) - general_steps
    assert record_formats(store, "whole") == (
        [general] * (1 + general_steps) + [step] * steps + [general]
    )
    for crash_after in range(1, len(expected) + 2):
        crashed = CrashingStore()
        crashed.counter.crash_after = crash_after
        with pytest.raises(SimulatedCrash):
            await program(3, orchestration_backend=DurableBackend(crashed), instance_id="c")
        resumed = DurableBackend(crashed)
        assert await program(3, orchestration_backend=resumed, instance_id="c") == expected


async def test_writes_that_change_more_than_a_step_keep_the_general_record():
    # Parking the instance and taking the event (which sets it running again) change its
    # status; they are written whole, the steps around them as step records.
    store = CrashingStore()
    backend = DurableBackend(store)
    with pytest.raises(PauseForEventException):
        await counting(4, orchestration_backend=backend, instance_id="w")
    backend.publish_event("w", "go")
    assert await counting(4, orchestration_backend=backend, instance_id="w") == 10
    step, general = backend_module.STEP_RECORD_FORMAT, backend_module.RECORD_FORMAT
    formats = record_formats(store, "w")
    # start, steps 0 and 1, park; the event taken, steps 2 and 3, the end
    assert formats == [general, step, step, general, general, step, step, general]


def test_a_step_record_of_an_earlier_version_is_read_as_its_changes():
    frame = ("m:flow", "f" * 64, 1, 4, {"total": 3}, None, ("at", 2, None), {"it": (0, 5, 1, 2)})
    older = (3, 1.5, 3, 2, 2, "m.f", "0" * 16, 5, STACK_FORMAT, *frame[:5], frame[7])
    changes = backend_module._decode("i", pickle.dumps(older))
    assert changes == {
        "set": {"updated_at": 1.5, "snapshot": (STACK_FORMAT, (frame,)), "next_seq": 3},
        "entries": {
            2: {"function_id": "m.f", "args_digest": "0" * 16, "status": SUCCEEDED, "value": 5}
        },
        "prune_below": 2,
    }


def test_records_of_the_formats_before_shown_digests_are_read_as_their_changes():
    frame = ("m:flow", "f" * 64, 1, 4, {"total": 3}, None, ("at", 2, None), None)
    step = (1.5, 3, 2, 2, "m.f", "0" * 16, "value", 5, (STACK_FORMAT, (frame,)), 1.25)
    now = backend_module._decode("i", pickle.dumps((backend_module.STEP_RECORD_FORMAT, *step)))
    assert backend_module._decode("i", pickle.dumps((5, *step))) == now
    changes = {"set": {"status": "RUNNING"}, "entries": {}}
    assert backend_module._decode("i", pickle.dumps((2, changes))) == changes


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


def echo(i):
    return i


@make_durable
async def nested_ranges(outer, width):
    total = 0
    for start in range(*outer):
        for i in range(start, start + width):
            total += await durable_execute(echo, i)
    return total


def saved_ranges(store: InMemoryStateStore, instance_id: str) -> list[list[list]]:
    """The items each step's snapshot leaves to its range iterators, by variable."""
    saved = []
    for data in store.read_records(instance_id):
        snapshot = backend_module._decode(instance_id, data).get("set", {}).get("snapshot")
        if snapshot:
            ranges = saved_stack(snapshot, references.loads)[1][0][7] or {}
            saved.append(
                [list(references.range_iterator(*ranges[name])) for name in sorted(ranges)]
            )
    return saved


@pytest.mark.parametrize(("outer", "width"), [((2,), 3), ((9, -3, -4), 2)])
async def test_every_snapshot_saves_the_range_iterators_at_their_positions_then(outer, width):
    # The outer iterator stays the same one; the inner one is another at each outer turn.
    store = InMemoryStateStore()
    await nested_ranges(outer, width, orchestration_backend=DurableBackend(store), instance_id="r")
    outer_items = list(range(*outer))
    expected = [[]]  # the first write, before the loops
    for turn, start in enumerate(outer_items):
        inner_items = list(range(start, start + width))
        for step in range(width):
            expected.append([outer_items[turn + 1 :], inner_items[step + 1 :]])
    assert saved_ranges(store, "r") == expected
