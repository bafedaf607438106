"""The journal and reconcile contract of `durable_execute` (DESIGN §5), row by row.

A store that counts its writes checks the write count of every row; a store that "dies"
right after a chosen write (a `BaseException`, as the process dying) makes the crash that
leaves an entry PENDING, SUCCEEDED or FAILED, and a new backend over the same store resumes.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
import threading

import cloudpickle
import pytest

from durable import (
    DurableBackend,
    InMemoryStateStore,
    JournalPolicy,
    NotApplied,
    PauseForEventException,
    durable_execute,
    durable_execute_async,
    make_durable,
)
from durable.runtime import references
from durable.runtime.backend import _decode
from durable.runtime.journal import (
    FAILED,
    PENDING,
    SUCCEEDED,
    args_digest,
    entry_status,
    hashed_args_digest,
)
from tests.crashing import CountsWrites, SimulatedCrash, WriteCounter

LOG: list = []


class CountingStore(CountsWrites, InMemoryStateStore):
    """Counts instance writes; raises `SimulatedCrash` right after write `crash_after`."""

    def __init__(self) -> None:
        super().__init__()
        self.counter = WriteCounter()


@pytest.fixture(autouse=True)
def fresh_log():
    LOG.clear()
    SWITCHES.clear()
    yield


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


SWITCHES: dict[str, object] = {}


def charge(order: str, amount: int = 1) -> str:
    LOG.append(("charge", order))
    return f"charged {order} {amount}"


def refund(order: str) -> str:
    LOG.append(("refund", order))
    return f"refunded {order}"


def declined(order: str) -> str:
    LOG.append(("charge", order))
    raise ValueError(f"card declined for {order}")


def ledger_says_charged() -> str:
    LOG.append(("reconcile",))
    outcome = SWITCHES.get("reconcile", "charged by reconciler")
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


async def run(program, *args, store: CountingStore, instance_id: str = "i1"):
    return await program(
        *args, orchestration_backend=DurableBackend(store), instance_id=instance_id
    )


async def crash_then_resume(program, *args, store: CountingStore, after: int):
    """Run until write `after` returns and the process 'dies'; resume in a new backend.
    Returns (result of the resumed run, writes the resumed run made)."""
    store.counter.crash_after = after
    with pytest.raises(SimulatedCrash):
        await run(program, *args, store=store)
    before = store.counter.writes
    result = await run(program, *args, store=store)
    return result, store.counter.writes - before


def journal(store: CountingStore, instance_id: str = "i1") -> dict:
    return DurableBackend(store).load_state(instance_id)["journal"]


# -- write counts ---------------------------------------------------------------------------
@make_durable
async def three_charges():
    for order in ("a", "b", "c"):
        await durable_execute(charge, order)
    raise PauseForEventException("done")


@make_durable
async def three_reconciled_charges():
    for order in ("a", "b", "c"):
        await durable_execute(charge, order, reconciler=ledger_says_charged)
    raise PauseForEventException("done")


async def test_a_call_without_reconciler_is_one_store_write(store):
    with pytest.raises(PauseForEventException):
        await run(three_charges, store=store)
    # start + one per call + the wait
    assert store.counter.writes == 1 + 3 + 1


async def test_a_call_with_a_reconciler_is_two_store_writes(store):
    with pytest.raises(PauseForEventException):
        await run(three_reconciled_charges, store=store)
    assert store.counter.writes == 1 + 2 * 3 + 1


async def test_each_call_takes_the_next_sequence_number_of_its_instance(store):
    with pytest.raises(PauseForEventException):
        await run(three_charges, store=store)
    backend = DurableBackend(store)
    state = backend.load_state("i1")
    assert state["next_seq"] == 5  # three calls and the wait point
    assert state["journal"] == {}  # settled entries older than the snapshot are pruned


# -- none: a new call -----------------------------------------------------------------------
@make_durable
async def charge_then_pause(order):
    before = f"about to charge {order}"
    receipt = await durable_execute(charge, order, amount=3)
    raise PauseForEventException("after-charge")
    return before, receipt


async def test_a_new_call_records_succeeded_with_its_result(store):
    with pytest.raises(PauseForEventException):
        await run(charge_then_pause, "o1", store=store, instance_id="i1")
    (entry,) = _entries_written(store, "i1")
    assert entry_status(entry) == SUCCEEDED
    assert entry["function_id"] == f"{__name__}.charge"
    digest = hashlib.sha256(cloudpickle.dumps((("o1",), {"amount": 3}))).hexdigest()[:16]
    assert entry["args_digest"] == digest


class Payments:
    @staticmethod
    def charge(order: str) -> str:
        LOG.append(("charge", order))
        return f"charged {order}"


@make_durable
async def charge_through_a_class(order):
    receipt = await durable_execute(Payments.charge, order)
    raise PauseForEventException("after-charge")
    return receipt


async def test_the_function_id_is_the_module_and_qualified_name_of_func(store):
    with pytest.raises(PauseForEventException):
        await run(charge_through_a_class, "o1", store=store)
    (entry,) = _entries_written(store, "i1")
    assert entry["function_id"] == f"{__name__}.Payments.charge"


class Receipt:
    def __init__(self, number):
        self.number = number


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),
        ((7,), {}),
        (("o1", 2.5, None, True, b"raw"), {"amount": 3}),
        (([1, (2, 3)], {"nested": [4]}), {}),
        ((Receipt(9),), {"receipt": Receipt(10)}),
        ((lambda: 1,), {}),
    ],
    ids=["nothing", "an int", "scalars and a keyword", "containers", "objects", "a lambda"],
)
def test_the_hashed_args_digest_is_the_sha256_of_the_cloudpickled_arguments(args, kwargs):
    expected = hashlib.sha256(cloudpickle.dumps((args, kwargs))).hexdigest()[:16]
    assert hashed_args_digest(args, kwargs) == expected


def test_the_hashed_args_digest_of_unpicklable_arguments_falls_back_to_their_str():
    args = (threading.Lock(),)
    expected = hashlib.sha256(str((args, {})).encode()).hexdigest()[:16]
    assert hashed_args_digest(args, {}) == expected


@pytest.mark.parametrize(
    "args",
    [(), (7,), ("o1", 2.5, None, True, b"raw"), (-0.0,), ("\ud800 \n é",)],
    ids=["nothing", "an int", "scalars", "negative zero", "an odd string"],
)
def test_the_digest_of_short_positional_scalars_is_their_repr(args):
    assert args_digest(args, {}) == repr(args)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("x" * 100,), {}),
        ((7,), {"amount": 3}),
        (([1, 2],), {}),
        ((Receipt(9),), {}),
    ],
    ids=["a long string", "a keyword", "a list", "an object"],
)
def test_other_arguments_are_digested_by_their_hash(args, kwargs):
    assert args_digest(args, kwargs) == hashed_args_digest(args, kwargs)


def test_scalars_of_equal_value_and_other_types_have_other_digests():
    calls = [(1,), (True,), (1.0,), ("1",), (b"1",), (None,), ((1,),)]
    assert len({args_digest(args, {}) for args in calls}) == len(calls)


def test_no_hashed_digest_looks_like_a_shown_one():
    # A shown digest is a tuple's repr; `digests_match` tells an older entry's by this.
    assert all(not hashed_args_digest((n, "o"), {}).startswith("(") for n in range(2_000))


@make_durable
async def declined_then_pause(order):
    try:
        await durable_execute(declined, order)
    except ValueError as error:
        caught = f"{type(error).__name__}: {error}"
    raise PauseForEventException("after-charge")
    return caught


async def test_a_new_call_that_raises_records_failed_and_raises(store):
    with pytest.raises(PauseForEventException):
        await run(declined_then_pause, "o1", store=store)
    (entry,) = _entries_written(store, "i1")
    assert entry_status(entry) == FAILED
    error = references.loads(entry["error"])
    assert (type(error), str(error)) == (ValueError, "card declined for o1")


@make_durable
async def declined_with_a_reconciler(order):
    try:
        await durable_execute(declined, order, reconciler=ledger_says_charged)
    except ValueError as error:
        caught = str(error)
    raise PauseForEventException("after-charge")
    return caught


async def test_a_new_reconciled_call_that_raises_is_finalized_as_failed_in_its_second_write(
    store,
):
    with pytest.raises(PauseForEventException):
        await run(declined_with_a_reconciler, "o1", store=store)
    assert [entry_status(e) for e in _entries_written(store, "i1")] == [PENDING, FAILED]
    assert store.counter.writes == 1 + 2 + 1  # start, PENDING, FAILED, the wait
    DurableBackend(store).publish_event("i1", "after-charge")
    assert await run(declined_with_a_reconciler, "o1", store=store) == "card declined for o1"
    assert LOG == [("charge", "o1")]  # replayed: neither func nor the reconciler again


def _entries_written(store: CountingStore, instance_id: str) -> list[dict]:
    """Every journal entry in the instance's log, in write order."""
    entries = []
    for data in store.read_records(instance_id):
        entries.extend(_decode(instance_id, data).get("entries", {}).values())
    return entries


# -- SUCCEEDED / FAILED: replay ---------------------------------------------------------------
@make_durable
async def charge_and_refund(order):
    note = f"order {order}"
    receipt = await durable_execute(charge, order)
    credit = await durable_execute(refund, order)
    return note, receipt, credit


async def test_a_succeeded_entry_is_returned_without_calling_func_or_writing(store):
    # Write 2 journals the charge (with the frame saved at the call); the process dies.
    result, writes = await crash_then_resume(charge_and_refund, "o1", store=store, after=2)
    assert result == ("order o1", "charged o1 1", "refunded o1")
    assert LOG == [("charge", "o1"), ("refund", "o1")]
    assert writes == 1 + 1  # the refund and the completion; the replayed charge wrote nothing


async def test_a_failed_entry_raises_the_same_exception_again_without_calling_func(store):
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(declined_then_pause, "o1", store=store)
    before = store.counter.writes
    with pytest.raises(PauseForEventException):
        await run(declined_then_pause, "o1", store=store)
    assert store.counter.writes - before == 1  # the wait; the replayed failure wrote nothing
    DurableBackend(store).publish_event("i1", "after-charge")
    assert await run(declined_then_pause, "o1", store=store) == "ValueError: card declined for o1"
    assert LOG == [("charge", "o1")]


# -- PENDING, with reconciler ---------------------------------------------------------------
@make_durable
async def reconciled_charge(order):
    receipt = await durable_execute(charge, order, reconciler=ledger_says_charged)
    return receipt


async def test_a_pending_call_is_settled_by_its_reconciler_not_by_func(store):
    # Write 2 is the PENDING entry: the process dies before (or while) charging.
    result, writes = await crash_then_resume(reconciled_charge, "o1", store=store, after=2)
    assert result == "charged by reconciler"
    assert LOG == [("reconcile",)]
    assert writes == 1 + 1  # the reconciled outcome, then the completion


async def test_a_pending_call_journaled_with_the_hash_of_an_earlier_version_is_reconciled(
    store,
):
    # Earlier versions hashed every call's arguments, and wrote records of format 2: the
    # call still finds its entry (the reconciler settles it), it does not run again.
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(reconciled_charge, "o1", store=store)
    older = []
    for data in store.read_records("i1"):
        changes = _decode("i1", data)
        for entry in changes.get("entries", {}).values():
            assert entry["args_digest"] == "('o1',)"
            entry["args_digest"] = hashed_args_digest(("o1",), {})
        older.append(pickle.dumps((2, changes)))
    store.replace_records("i1", older)
    LOG.clear()
    assert await run(reconciled_charge, "o1", store=store) == "charged by reconciler"
    assert LOG == [("reconcile",)]


async def test_a_reconciled_value_is_persisted_as_succeeded(store):
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(reconciled_charge, "o1", store=store)
    store.counter.crash_after = (
        store.counter.writes + 1
    )  # die right after the reconciled outcome is written
    with pytest.raises(SimulatedCrash):
        await run(reconciled_charge, "o1", store=store)
    entries = _entries_written(store, "i1")
    assert [entry_status(e) for e in entries] == [PENDING, SUCCEEDED]
    LOG.clear()
    assert await run(reconciled_charge, "o1", store=store) == "charged by reconciler"
    assert LOG == []


async def test_a_reconciler_failure_is_persisted_and_replayed(store):
    SWITCHES["reconcile"] = LookupError("charge o1 is not in the ledger and cannot be retried")
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(reconciled_charge, "o1", store=store)
    with pytest.raises(LookupError, match="not in the ledger"):
        await run(reconciled_charge, "o1", store=store)
    assert [entry_status(e) for e in _entries_written(store, "i1")] == [PENDING, FAILED]
    SWITCHES["reconcile"] = "would now succeed"
    with pytest.raises(LookupError, match="not in the ledger"):
        await run(reconciled_charge, "o1", store=store)
    assert LOG == [("reconcile",)]


@make_durable
async def caught_reconciler_failure(order):
    try:
        await durable_execute(charge, order, reconciler=ledger_says_charged)
    except LookupError as error:
        seen = (type(error).__name__, str(error))
    raise PauseForEventException("next")
    return seen


async def test_replaying_a_reconciler_failure_raises_the_same_type_and_message(store):
    SWITCHES["reconcile"] = LookupError("not in the ledger")
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(caught_reconciler_failure, "o1", store=store)
    store.counter.crash_after = store.counter.writes + 1  # die right after the FAILED entry
    with pytest.raises(SimulatedCrash):
        await run(caught_reconciler_failure, "o1", store=store)
    with pytest.raises(PauseForEventException):
        await run(caught_reconciler_failure, "o1", store=store)
    DurableBackend(store).publish_event("i1", "next")
    assert await run(caught_reconciler_failure, "o1", store=store) == (
        "LookupError",
        "not in the ledger",
    )
    assert LOG == [("reconcile",)]


async def test_not_applied_from_the_reconciler_runs_func_as_a_new_call(store):
    SWITCHES["reconcile"] = NotApplied()
    result, writes = await crash_then_resume(reconciled_charge, "o1", store=store, after=2)
    assert result == "charged o1 1"
    assert LOG == [("reconcile",), ("charge", "o1")]
    assert writes == 2 + 1  # PENDING and SUCCEEDED of the new call, then the completion


# -- PENDING, no reconciler -------------------------------------------------------------------
@make_durable(journal=JournalPolicy(snapshot_every=10))
async def charge_maybe_reconciled(order):
    reconciler = ledger_says_charged if SWITCHES.get("with reconciler", True) else None
    return await durable_execute(charge, order, reconciler=reconciler)


async def test_a_pending_call_without_reconciler_runs_func_again_and_finalizes(store):
    # snapshot_every=10: the PENDING write carries no snapshot, so the resumed run creates
    # the call again from the code, which now passes no reconciler.
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(charge_maybe_reconciled, "o1", store=store)
    SWITCHES["with reconciler"] = False
    before = store.counter.writes
    assert await run(charge_maybe_reconciled, "o1", store=store) == "charged o1 1"
    assert LOG == [("charge", "o1")]
    assert store.counter.writes - before == 1 + 1  # the finalized entry, then the completion


# -- mismatched entries -----------------------------------------------------------------------
@make_durable(journal=JournalPolicy(snapshot_every=10))
async def three_steps(order):
    first = await durable_execute(charge, order)
    second = await durable_execute(charge, SWITCHES.get("second order", order + "-2"))
    third = await durable_execute(refund, order)
    return first, second, third


async def test_a_mismatched_entry_clears_it_and_every_later_entry_then_runs_as_new(store):
    store.counter.crash_after = 4  # start, then three journal entries without a snapshot
    with pytest.raises(SimulatedCrash):
        await run(three_steps, "o1", store=store)
    assert LOG == [("charge", "o1"), ("charge", "o1-2"), ("refund", "o1")]
    LOG.clear()
    SWITCHES["second order"] = "o9"
    before = store.counter.writes
    result = await run(three_steps, "o1", store=store)
    assert result == ("charged o1 1", "charged o9 1", "refunded o1")
    # The first call replays; the second no longer matches its entry: both later entries go.
    assert LOG == [("charge", "o9"), ("refund", "o1")]
    assert store.counter.writes - before == 1 + 1 + 1 + 1  # clear, second, third, completion


async def test_an_entry_of_another_function_at_the_same_sequence_number_is_a_mismatch(store):
    store.counter.crash_after = 4
    with pytest.raises(SimulatedCrash):
        await run(three_steps, "o1", store=store)
    state = DurableBackend(store).load_state("i1")
    assert [e["function_id"] for e in state["journal"].values()] == [
        f"{__name__}.charge",
        f"{__name__}.charge",
        f"{__name__}.refund",
    ]


@make_durable(journal=JournalPolicy(snapshot_every=10))
async def charge_then_settle(order):
    first = await durable_execute(charge, order)
    second = await durable_execute(SWITCHES.get("settle with", charge), order)
    return first, second


async def test_an_entry_of_another_function_with_the_same_arguments_is_cleared_and_run_as_new(
    store,
):
    store.counter.crash_after = 3  # start, then both journal entries without a snapshot
    with pytest.raises(SimulatedCrash):
        await run(charge_then_settle, "o1", store=store)
    LOG.clear()
    SWITCHES["settle with"] = refund  # same arguments, so the same args_digest
    before = store.counter.writes
    assert await run(charge_then_settle, "o1", store=store) == ("charged o1 1", "refunded o1")
    assert LOG == [("refund", "o1")]
    assert store.counter.writes - before == 1 + 1 + 1  # clear, the refund, completion


# -- entries of older state -------------------------------------------------------------------
def test_an_entry_without_status_is_succeeded_when_it_holds_no_exception():
    assert entry_status({"result": b"x"}) == SUCCEEDED
    assert entry_status({}) == SUCCEEDED


def test_an_entry_without_status_is_failed_when_it_holds_an_exception():
    assert entry_status({"error": b"pickled exception"}) == FAILED


async def test_a_replayed_entry_without_status_is_inferred_from_its_payload(store):
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(charge_and_refund, "o1", store=store)
    backend = DurableBackend(store)
    state = backend.load_state("i1")
    for entry in state["journal"].values():
        del entry["status"]
    backend.save_state("i1", state)
    assert await run(charge_and_refund, "o1", store=store) == (
        "order o1",
        "charged o1 1",
        "refunded o1",
    )
    assert LOG == [("charge", "o1"), ("refund", "o1")]


async def test_a_replayed_entry_without_status_holding_an_error_raises_it(store):
    store.counter.crash_after = 2  # the FAILED entry of the declined charge
    with pytest.raises(SimulatedCrash):
        await run(declined_then_pause, "o1", store=store)
    backend = DurableBackend(store)
    state = backend.load_state("i1")
    (entry,) = state["journal"].values()
    del entry["status"]
    backend.save_state("i1", state)
    with pytest.raises(PauseForEventException):
        await run(declined_then_pause, "o1", store=store)
    DurableBackend(store).publish_event("i1", "after-charge")
    assert await run(declined_then_pause, "o1", store=store) == "ValueError: card declined for o1"
    assert LOG == [("charge", "o1")]


# -- snapshot policy ----------------------------------------------------------------------------
@make_durable(journal=JournalPolicy(snapshot_every=3))
async def six_charges():
    total = []
    for order in "abcdef":
        total.append(await durable_execute(charge, order))
    return len(total)


def _snapshots_written(store: CountingStore, instance_id: str = "i1") -> list[bool]:
    from durable.runtime.backend import _decode

    return [
        "snapshot" in _decode(instance_id, data).get("set", {})
        and _decode(instance_id, data)["set"]["snapshot"] is not None
        for data in store.read_records(instance_id)
    ]


async def test_snapshot_every_k_operations_writes_a_snapshot_with_every_kth(store):
    assert await run(six_charges, store=store) == 6
    # start (snapshot), six calls (a snapshot with the 3rd and the 6th), the completion
    assert _snapshots_written(store) == [True, False, False, True, False, False, True, False]


async def test_resume_replays_the_journal_written_since_the_last_snapshot(store):
    # Die right after the 5th call: the last snapshot went with the 3rd.
    result, writes = await crash_then_resume(six_charges, store=store, after=6)
    assert result == 6
    assert LOG == [("charge", o) for o in "abcdef"]  # d and e replay from the journal
    assert writes == 1 + 1  # f, then the completion


async def test_a_snapshot_prunes_entries_a_resume_no_longer_needs(store):
    await run(six_charges, store=store)
    assert DurableBackend(store).load_state("i1").get("journal", {}) == {}


@make_durable(journal=JournalPolicy(keep_history=2))
async def charges_keeping_history():
    for order in "abcd":
        await durable_execute(charge, order)
    return "done"


async def test_keep_history_keeps_that_many_entries_after_completion(store):
    await run(charges_keeping_history, store=store)
    kept = DurableBackend(store).load_state("i1")["journal"]
    assert sorted(kept) == [3, 4]
    assert [e["args_digest"] for e in kept.values()] == ["('c',)", "('d',)"]


def test_journal_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="snapshot_every"):
        JournalPolicy(snapshot_every=0)
    with pytest.raises(ValueError, match="keep_history"):
        JournalPolicy(keep_history=-1)


def test_make_durable_refuses_a_journal_that_is_not_a_policy():
    async def flow():
        return 1

    with pytest.raises(TypeError, match="JournalPolicy"):
        make_durable(flow, journal={"snapshot_every": 2})


# -- compaction ---------------------------------------------------------------------------------
@make_durable
async def many_charges(count):
    for n in range(count):
        await durable_execute(charge, str(n))
    raise PauseForEventException("done")


async def test_the_log_of_an_instance_is_compacted_into_one_record_every_bound(store):
    backend = DurableBackend(store, compact_after=8)
    with pytest.raises(PauseForEventException):
        await many_charges(20, orchestration_backend=backend, instance_id="i1")
    assert len(store.read_records("i1")) <= 8
    backend.publish_event("i1", "done")
    LOG.clear()
    resumed = DurableBackend(store, compact_after=8)
    assert await many_charges(20, orchestration_backend=resumed, instance_id="i1") is None
    assert LOG == []


async def test_the_log_of_an_instance_is_compacted_when_its_records_reach_a_size(store):
    backend = DurableBackend(store, compact_after_bytes=2_000)
    with pytest.raises(PauseForEventException):
        await many_charges(40, orchestration_backend=backend, instance_id="i1")
    records = store.read_records("i1")
    largest = max(map(len, records))
    assert sum(map(len, records)) < 2_000 + largest
    assert len(records) < 40
    backend.publish_event("i1", "done")
    LOG.clear()
    resumed = DurableBackend(store, compact_after_bytes=2_000)
    assert await many_charges(40, orchestration_backend=resumed, instance_id="i1") is None
    assert LOG == []


@pytest.mark.parametrize("bound", ["compact_after", "compact_after_bytes"])
def test_a_log_bound_below_one_is_refused_naming_it(bound):
    with pytest.raises(ValueError, match=f"{bound} must be an int >= 1, got 0"):
        DurableBackend(**{bound: 0})


# -- sync and async functions -------------------------------------------------------------------
async def async_charge(order):
    await asyncio.sleep(0)
    LOG.append(("async charge", order))
    return f"async {order}"


def where_am_i():
    return threading.get_ident()


@make_durable
async def threads_and_coroutines():
    loop_thread = threading.get_ident()
    inline = await durable_execute(where_am_i)
    in_worker = await durable_execute_async(where_am_i)
    awaited = await durable_execute(async_charge, "o1")
    awaited_async = await durable_execute_async(async_charge, "o2")
    return inline == loop_thread, in_worker != loop_thread, awaited, awaited_async


async def test_sync_runs_inline_async_is_awaited_and_execute_async_uses_a_worker_thread(store):
    assert await run(threads_and_coroutines, store=store) == (
        True,
        True,
        "async o1",
        "async o2",
    )


@make_durable
async def created_but_awaited_later():
    pending_call = durable_execute_async(charge, "late")
    LOG.append(("created",))
    raise PauseForEventException("go")
    return await pending_call


async def test_durable_execute_async_records_and_runs_nothing_until_awaited(store):
    with pytest.raises(PauseForEventException):
        await run(created_but_awaited_later, store=store)
    assert LOG == [("created",)]
    assert store.counter.writes == 2  # the start and the wait point; no journal entry
    assert _entries_written(store, "i1") == []


# -- reconciler validation and forwarding ---------------------------------------------------------
def takes_anything(*args, **kwargs):
    return args, kwargs


class Ledger:
    def __init__(self) -> None:
        self.checked = 0

    def check(self) -> str:
        self.checked += 1
        return "in the ledger"

    def lookup(self, order) -> str:
        return order


async def test_a_reconciler_that_is_not_callable_is_refused_with_the_exact_message():
    with pytest.raises(TypeError) as caught:
        durable_execute(charge, "o1", reconciler="ledger")
    assert str(caught.value) == "reconciler must be callable"


async def test_a_reconciler_that_needs_arguments_is_refused_with_the_exact_message():
    with pytest.raises(TypeError) as caught:
        durable_execute(charge, "o1", reconciler=Ledger().lookup)
    assert str(caught.value) == "reconciler must be a callable that takes no arguments"


async def test_a_bound_zero_argument_method_is_accepted_as_reconciler(store):
    assert await durable_execute(charge, "o1", reconciler=Ledger().check) == "charged o1 1"


@make_durable
async def charge_reconciled_by_a_method(order):
    return await durable_execute(charge, order, reconciler=Ledger().check)


async def test_a_bound_method_reconciler_settles_a_pending_call_on_resume(store):
    result, writes = await crash_then_resume(
        charge_reconciled_by_a_method, "o1", store=store, after=2
    )
    assert result == "in the ledger"
    assert LOG == []  # the charge never ran: the method's answer settled it
    assert writes == 1 + 1


@make_durable
async def forwards(order):
    return await durable_execute(takes_anything, order, reconciler=ledger_says_charged, x=1)


async def test_the_reconciler_is_never_forwarded_to_func(store):
    assert await run(forwards, "o1", store=store) == (("o1",), {"x": 1})
    assert await durable_execute(takes_anything, 1, reconciler=ledger_says_charged) == ((1,), {})


async def test_outside_a_durable_run_it_is_a_plain_call_and_the_reconciler_is_ignored():
    assert await durable_execute(charge, "o1", reconciler=ledger_says_charged) == "charged o1 1"
    assert await durable_execute_async(charge, "o2", reconciler=ledger_says_charged) == (
        "charged o2 1"
    )
    assert LOG == [("charge", "o1"), ("charge", "o2")]


async def test_outside_a_durable_run_the_reconciler_is_still_validated():
    with pytest.raises(TypeError, match="reconciler must be callable"):
        await durable_execute(charge, "o1", reconciler=42)
