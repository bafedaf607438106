"""Fan-out over sub-flows: `asyncio.gather` of helpers, nested durable functions, wait points
and timers, each branch pausing and resuming on its own; and `durable.first`."""

from __future__ import annotations

import asyncio
import time

import pytest

import durable
from durable import (
    DurableBackend,
    InMemoryStateStore,
    JournalPolicy,
    PauseForEventException,
    SQLiteStateStore,
    durable_execute,
    make_durable,
    wait_for_event,
)
from tests.crashing import CountsWrites, SimulatedCrash, WriteCounter

DONE: list[str] = []


def act(name: str) -> str:
    DONE.append(name)
    return name.upper()


async def slow_act(name: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return act(name)


@pytest.fixture(autouse=True)
def _fresh_record():
    DONE.clear()


async def call(program, backend, *args):
    return await program(*args, orchestration_backend=backend, instance_id="i1")


async def paused_on(program, backend, *args) -> str:
    with pytest.raises(PauseForEventException) as paused:
        await call(program, backend, *args)
    return paused.value.event


# -- gather of helpers with wait points ----------------------------------------------------
async def ask(question: str) -> str:
    await durable_execute(act, f"asked {question}")
    answer = await wait_for_event(question)
    await durable_execute(act, f"heard {question}")
    return answer


@make_durable
async def ask_both():
    return await asyncio.gather(ask("a"), ask("b"))


async def test_each_gathered_helper_pauses_and_resumes_on_its_own():
    backend = DurableBackend(InMemoryStateStore())
    assert await paused_on(ask_both, backend) == "a"
    assert DONE == ["asked a", "asked b"]
    backend.publish_event("i1", "a", "yes")
    assert await paused_on(ask_both, backend) == "b"
    assert DONE == ["asked a", "asked b", "heard a"]
    backend.publish_event("i1", "b", "no")
    assert await call(ask_both, backend) == ["yes", "no"]
    assert DONE == ["asked a", "asked b", "heard a", "heard b"]


async def test_an_instance_paused_in_a_gather_waits_for_any_of_its_events():
    backend = DurableBackend(InMemoryStateStore())
    await paused_on(ask_both, backend)
    state = backend.load_state("i1")
    assert (state["status"], state["waiting_events"]) == ("waiting", ["a", "b"])
    backend.publish_event("i1", "b", "second first")  # the later branch's event
    assert await paused_on(ask_both, backend) == "a"
    assert DONE[-1] == "heard b"
    assert backend.load_state("i1")["waiting_events"] is None


async def test_a_paused_gather_is_not_run_again_until_one_of_its_events_arrives():
    backend = DurableBackend(InMemoryStateStore())
    await paused_on(ask_both, backend)
    await paused_on(ask_both, backend)
    assert DONE == ["asked a", "asked b"]


@make_durable
async def reviewer(name: str) -> str:
    verdict = await wait_for_event(f"verdict-{name}")
    await durable_execute(act, f"{name} said {verdict}")
    return verdict


@make_durable
async def review_by_two():
    return await asyncio.gather(reviewer("ann"), reviewer("bob"))


async def test_gathered_nested_durable_functions_pause_independently():
    backend = DurableBackend(InMemoryStateStore())
    assert await paused_on(review_by_two, backend) == "verdict-ann"
    backend.publish_event("i1", "verdict-bob", "no")
    await paused_on(review_by_two, backend)
    backend.publish_event("i1", "verdict-ann", "yes")
    assert await call(review_by_two, backend) == ["yes", "no"]
    assert DONE == ["bob said no", "ann said yes"]


@make_durable
async def mixed_members():
    before = await durable_execute(act, "before")
    results = await asyncio.gather(
        durable_execute(act, "call"),
        ask("q"),
        wait_for_event("go"),
        durable.sleep(0),
        reviewer("cy"),
    )
    return before, results


async def test_a_gather_takes_calls_helpers_waits_timers_and_nested_functions_together():
    backend = DurableBackend(InMemoryStateStore())
    await paused_on(mixed_members, backend)
    for event in ("q", "go", "verdict-cy"):
        backend.publish_event("i1", event, f"payload {event}")
    assert await call(mixed_members, backend) == (
        "BEFORE",
        ["CALL", "payload q", "payload go", None, "payload verdict-cy"],
    )
    assert sorted(DONE) == sorted(
        ["before", "call", "asked q", "heard q", "cy said payload verdict-cy"]
    )


# -- failures --------------------------------------------------------------------------------
async def fails(message: str) -> None:
    await durable_execute(act, "about to fail")
    raise ValueError(message)


@make_durable
async def gather_returning_exceptions():
    return await asyncio.gather(fails("boom"), ask("x"), return_exceptions=True)


async def test_return_exceptions_returns_a_failed_helper_as_its_exception_across_a_pause():
    backend = DurableBackend(InMemoryStateStore())
    await paused_on(gather_returning_exceptions, backend)
    backend.publish_event("i1", "x", "answer")
    failed, answered = await call(gather_returning_exceptions, backend)
    assert (type(failed), str(failed), answered) == (ValueError, "boom", "answer")


async def waits_then_records(event: str) -> None:
    try:
        await wait_for_event(event)
    finally:
        DONE.append(f"left {event}")


@make_durable
async def gather_with_a_failure():
    try:
        await asyncio.gather(waits_then_records("never"), fails("bad"))
    except ValueError as error:
        return f"caught {error}"


async def test_a_failing_branch_raises_out_of_the_gather_and_cancels_the_others():
    backend = DurableBackend(InMemoryStateStore())
    assert await call(gather_with_a_failure, backend) == "caught bad"
    assert "left never" in DONE  # the waiting branch was really left, its finally ran


async def plain_fetch(value: int) -> int:
    await asyncio.sleep(0.01)
    return value * 10


@make_durable
async def gather_with_a_plain_member():
    return await asyncio.gather(asyncio.ensure_future(plain_fetch(4)), durable_execute(act, "d"))


async def test_a_member_that_is_not_durable_runs_as_a_plain_task_beside_durable_ones():
    backend = DurableBackend(InMemoryStateStore())
    assert await call(gather_with_a_plain_member, backend) == [40, "D"]


# -- crashes -----------------------------------------------------------------------------------
class CrashingStore(CountsWrites, InMemoryStateStore):
    pass


async def branch(name: str, delay: float) -> list:
    first = await durable_execute(slow_act, f"{name}1", delay)
    second = await durable_execute(slow_act, f"{name}2", delay)
    third = await durable_execute(slow_act, f"{name}3", delay)
    return [first, second, third]


@make_durable(journal=JournalPolicy(snapshot_every=1000))
async def interleaved():
    return await asyncio.gather(branch("slow", 0.03), branch("fast", 0.0))


@pytest.mark.parametrize("crash_after", range(2, 8))
async def test_a_crash_mid_gather_settles_every_branch_by_its_own_journal_entries(crash_after):
    # Snapshots only at the start: the resume replays the branches from their beginning,
    # now in another interleaving, and each takes back its own entries.
    store = CrashingStore()
    store.counter = WriteCounter(crash_after=crash_after)
    with pytest.raises(SimulatedCrash):
        await call(interleaved, DurableBackend(store))
    before = list(DONE)
    store.counter.crash_after = None
    assert await call(interleaved, DurableBackend(store)) == [
        ["SLOW1", "SLOW2", "SLOW3"],
        ["FAST1", "FAST2", "FAST3"],
    ]
    assert sorted(DONE) == sorted(["slow1", "slow2", "slow3", "fast1", "fast2", "fast3"])
    assert len(before) >= crash_after - 2  # the crash came after some calls had landed


async def test_a_gather_resumes_in_a_new_backend_over_sqlite(tmp_path):
    path = tmp_path / "state.db"
    await paused_on(ask_both, DurableBackend(SQLiteStateStore(path)))
    DurableBackend(SQLiteStateStore(path)).publish_event("i1", "b", "B")
    await paused_on(ask_both, DurableBackend(SQLiteStateStore(path)))
    DurableBackend(SQLiteStateStore(path)).publish_event("i1", "a", "A")
    assert await call(ask_both, DurableBackend(SQLiteStateStore(path))) == ["A", "B"]
    assert DONE == ["asked a", "asked b", "heard b", "heard a"]


# -- first of --------------------------------------------------------------------------------
@make_durable
async def approval(timeout: float):
    which, value = await durable.first(
        wait_for_event("approve"), wait_for_event("reject"), durable.sleep(timeout)
    )
    outcome = ["approved", "rejected", "timed out"][which]
    await durable_execute(act, outcome)
    return outcome, value


async def test_first_returns_the_branch_whose_event_came():
    backend = DurableBackend(InMemoryStateStore())
    assert await paused_on(approval, backend, 60.0) == "approve"
    backend.publish_event("i1", "reject", "too costly")
    assert await call(approval, backend, 60.0) == ("rejected", "too costly")
    assert DONE == ["rejected"]


async def test_first_pauses_with_the_earliest_timer_as_its_deadline():
    backend = DurableBackend(InMemoryStateStore())
    started = time.time()
    await paused_on(approval, backend, 30.0)
    state = backend.load_state("i1")
    assert state["waiting_events"] == ["approve", "reject"]
    assert started + 29 < state["deadline"] < time.time() + 31


async def test_first_resumed_after_its_timer_is_won_by_the_timer():
    backend = DurableBackend(InMemoryStateStore())
    await paused_on(approval, backend, 0.05)
    await asyncio.sleep(0.1)
    assert await call(approval, backend, 0.05) == ("timed out", None)


@make_durable
async def race():
    which, value = await durable.first(
        durable_execute(slow_act, "slow", 0.05), durable_execute(slow_act, "fast", 0.0)
    )
    await durable_execute(act, f"after {value}")
    return which, value


async def test_the_winner_of_first_is_journaled_so_a_resume_sees_it_again():
    store = CrashingStore()
    # start, the fan-out, "fast", the winner; the crash comes at the call after it.
    store.counter = WriteCounter(crash_after=4)
    with pytest.raises(SimulatedCrash):
        await call(race, DurableBackend(store))
    assert DONE[:1] == ["fast"]
    store.counter.crash_after = None
    DONE.clear()
    assert await call(race, DurableBackend(store)) == (1, "FAST")
    assert "slow" not in DONE and "fast" not in DONE


async def test_first_outside_a_durable_run_is_the_first_to_complete():
    assert await durable.first(slow_act("late", 0.05), slow_act("soon", 0.0)) == (1, "SOON")


def test_first_needs_an_awaitable():
    with pytest.raises(TypeError, match="at least one awaitable"):
        durable.first()


# -- members that are not durable, writes in flight ---------------------------------------------
async def job() -> str:
    await durable_execute(act, "job")
    return await wait_for_event("go")


@make_durable
async def plain_beside_durable():
    return await asyncio.gather(asyncio.sleep(0.05, result="slept"), job())


async def test_no_snapshot_is_taken_while_a_plain_member_runs_so_a_crash_resumes_cleanly():
    store = CrashingStore()
    store.counter = WriteCounter(crash_after=3)  # start, the fan-out, "job": the sleep runs
    with pytest.raises(SimulatedCrash):
        await call(plain_beside_durable, DurableBackend(store))
    store.counter.crash_after = None
    assert await paused_on(plain_beside_durable, DurableBackend(store)) == "go"
    DurableBackend(store).publish_event("i1", "go", "went")
    assert await call(plain_beside_durable, DurableBackend(store)) == ["slept", "went"]
    assert DONE == ["job"]


class SlowToCommit(InMemoryStateStore):
    """Commits the record of the "slow-commit" call 50 ms later, as a group commit can."""

    def append_record(self, instance_id, record, summary=None):
        super().append_record(instance_id, record, summary)
        if b"SLOW-COMMIT" not in record:
            return None
        committed = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_later(0.05, committed.set_result, None)
        self.commits.append(committed)
        return committed


async def committing_slowly() -> str:
    return await durable_execute(act, "slow-commit")


async def winner() -> str:
    await asyncio.sleep(0.01)
    return await durable_execute(act, "winner")


@make_durable
async def loser_mid_write():
    return await durable.first(committing_slowly(), winner())


async def test_a_loser_cancelled_while_its_write_commits_leaves_the_run_going():
    store = SlowToCommit()
    store.commits = []
    assert await call(loser_mid_write, DurableBackend(store)) == (1, "WINNER")
    # The run let go of the instance only once the loser's write had committed.
    assert len(store.commits) == 1 and store.commits[0].done()
