"""`asyncio.gather` of durable calls, retries that survive restarts, and `@durable.step`."""

from __future__ import annotations

import asyncio
import time

import pytest

from durable import (
    DurableBackend,
    EventTimeoutError,
    NotApplied,
    PauseForEventException,
    RetryPolicy,
    durable_execute,
    make_durable,
    step,
    wait_for_event,
)
from durable.runtime.journal import FAILED, entry_status

from .test_journal import (  # noqa: F401 - fresh_log is the shared autouse fixture
    LOG,
    SWITCHES,
    CountingStore,
    SimulatedCrash,
    fresh_log,
    run,
)


@pytest.fixture
def store() -> CountingStore:
    return CountingStore()


# -- gather ---------------------------------------------------------------------------------
async def fetch(name: str, delay: float) -> str:
    await asyncio.sleep(delay)
    LOG.append(("fetch", name))
    return f"got {name}"


def ledger_has_fetch() -> str:
    LOG.append(("reconcile",))
    outcome = SWITCHES.get("reconcile", "reconciled")
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@make_durable
async def fetch_three():
    before = "before the gather"
    results = await asyncio.gather(
        durable_execute(fetch, "slow", 0.03),
        durable_execute(fetch, "medium", 0.02),
        durable_execute(fetch, "fast", 0.0),
    )
    return before, results


async def test_gather_of_durable_calls_returns_results_in_argument_order(store):
    assert await run(fetch_three, store=store) == (
        "before the gather",
        ["got slow", "got medium", "got fast"],
    )
    assert LOG == [("fetch", "fast"), ("fetch", "medium"), ("fetch", "slow")]


async def test_gather_takes_sequence_numbers_in_creation_order(store):
    store.counter.crash_after = 3  # start, then "fast" and "medium" have landed
    with pytest.raises(SimulatedCrash):
        await run(fetch_three, store=store)
    journal = DurableBackend(store).load_state("i1")["journal"]
    assert {seq: entry["args_digest"] for seq, entry in journal.items()}.keys() == {2, 3}
    from durable.runtime.journal import args_digest

    assert journal[3]["args_digest"] == args_digest(("fast", 0.0), {})
    assert journal[2]["args_digest"] == args_digest(("medium", 0.02), {})


async def test_a_crash_mid_gather_settles_landed_calls_from_the_journal_and_runs_the_rest(store):
    store.counter.crash_after = 3
    with pytest.raises(SimulatedCrash):
        await run(fetch_three, store=store)
    LOG.clear()
    before = store.counter.writes
    assert await run(fetch_three, store=store) == (
        "before the gather",
        ["got slow", "got medium", "got fast"],
    )
    assert LOG == [("fetch", "slow")]
    assert store.counter.writes - before == 1 + 1  # "slow", then the completion


@make_durable
async def fetch_two_reconciled():
    return await asyncio.gather(
        durable_execute(fetch, "a", 0.0, reconciler=ledger_has_fetch),
        durable_execute(fetch, "b", 0.01, reconciler=ledger_has_fetch),
    )


async def test_a_crash_mid_gather_reconciles_the_calls_in_flight(store):
    # start, PENDING a, PENDING b, SUCCEEDED a: the process dies with b in flight.
    store.counter.crash_after = 4
    with pytest.raises(SimulatedCrash):
        await run(fetch_two_reconciled, store=store)
    LOG.clear()
    assert await run(fetch_two_reconciled, store=store) == ["got a", "reconciled"]
    assert LOG == [("reconcile",)]


@make_durable
async def gather_returning_exceptions():
    results = await asyncio.gather(
        durable_execute(boom), durable_execute(fetch, "ok", 0.01), return_exceptions=True
    )
    return [repr(result) for result in results]


EXPECTED_WITH_EXCEPTIONS = ["RuntimeError('boom')", "'got ok'"]


async def test_gather_with_return_exceptions_returns_a_failed_call_as_its_exception(store):
    assert await run(gather_returning_exceptions, store=store) == EXPECTED_WITH_EXCEPTIONS


@make_durable
async def gather_with_a_failure():
    try:
        await asyncio.gather(durable_execute(fetch, "ok", 0.0), durable_execute(boom))
    except RuntimeError as error:
        return f"caught {error}"


def boom():
    raise RuntimeError("boom")


async def test_a_failing_call_in_a_gather_raises_out_of_the_gather(store):
    assert await run(gather_with_a_failure, store=store) == "caught boom"


# -- retries --------------------------------------------------------------------------------
ATTEMPTS: list[int] = []


def flaky(order: str) -> str:
    ATTEMPTS.append(len(ATTEMPTS) + 1)
    if len(ATTEMPTS) < SWITCHES.get("succeed on attempt", 3):
        raise ConnectionError(f"attempt {len(ATTEMPTS)} failed")
    return f"charged {order} on attempt {len(ATTEMPTS)}"


FAST = RetryPolicy(max_attempts=4, initial_backoff=0.01, multiplier=2, jitter=0)


@make_durable
async def charge_with_retries(order):
    return await durable_execute(flaky, order, retry=FAST)


@pytest.fixture(autouse=True)
def fresh_attempts():
    ATTEMPTS.clear()


async def test_a_failing_call_is_retried_until_it_succeeds(store):
    assert await run(charge_with_retries, "o1", store=store) == "charged o1 on attempt 3"
    assert ATTEMPTS == [1, 2, 3]


async def test_each_failed_attempt_is_journaled_with_its_count(store):
    await run(charge_with_retries, "o1", store=store)
    # start, attempt 1 failed, attempt 2 failed, SUCCEEDED, completion
    assert store.counter.writes == 5


async def test_a_restart_does_not_reset_the_attempt_count(store):
    SWITCHES["succeed on attempt"] = 99  # every attempt fails: only max_attempts ends them
    store.counter.crash_after = 3  # attempt 2's failure is journaled, then the process dies
    with pytest.raises(SimulatedCrash):
        await run(charge_with_retries, "o1", store=store)
    assert ATTEMPTS == [1, 2]
    with pytest.raises(ConnectionError, match="attempt 4 failed"):
        await run(charge_with_retries, "o1", store=store)
    assert ATTEMPTS == [1, 2, 3, 4]  # two more attempts after the restart, not four


SLOW = RetryPolicy(max_attempts=2, initial_backoff=1.0, jitter=0)


@make_durable
async def slow_retry():
    return await durable_execute(flaky, "o1", retry=SLOW)


async def test_a_restart_waits_only_the_rest_of_the_backoff(store):
    SWITCHES["succeed on attempt"] = 2
    store.counter.crash_after = 2  # attempt 1 failed, its retry time is journaled
    with pytest.raises(SimulatedCrash):
        await run(slow_retry, store=store)
    failed_at = time.monotonic()
    assert await run(slow_retry, store=store) == "charged o1 on attempt 2"
    assert time.monotonic() - failed_at >= 0.9  # the backoff is not skipped...


async def test_a_restart_after_the_backoff_has_passed_retries_at_once(store):
    SWITCHES["succeed on attempt"] = 2
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(slow_retry, store=store)
    await asyncio.sleep(1.0)
    resumed_at = time.monotonic()
    assert await run(slow_retry, store=store) == "charged o1 on attempt 2"
    assert time.monotonic() - resumed_at < 0.6  # ...nor started over


async def test_the_final_failure_is_persisted_as_failed(store):
    SWITCHES["succeed on attempt"] = 99
    with pytest.raises(ConnectionError, match="attempt 4 failed"):
        await run(charge_with_retries, "o1", store=store)
    assert ATTEMPTS == [1, 2, 3, 4]
    with pytest.raises(ConnectionError, match="attempt 4 failed"):
        await run(charge_with_retries, "o1", store=store)
    assert ATTEMPTS == [1, 2, 3, 4]


@make_durable
async def retries_caught():
    try:
        await durable_execute(flaky, "o1", retry=FAST)
    except ConnectionError:
        pass
    raise PauseForEventException("after")


async def test_the_final_failed_entry_records_the_attempts(store):
    SWITCHES["succeed on attempt"] = 99
    with pytest.raises(PauseForEventException):
        await run(retries_caught, store=store)
    from .test_journal import _entries_written

    final = _entries_written(store, "i1")[-1]
    assert entry_status(final) == FAILED
    assert final["attempts"] == 4


def not_retried(order):
    ATTEMPTS.append(1)
    raise KeyError(order)


@make_durable
async def only_connection_errors():
    policy = RetryPolicy(max_attempts=5, initial_backoff=0, retry_on=ConnectionError)
    return await durable_execute(not_retried, "o1", retry=policy)


async def test_exceptions_outside_retry_on_fail_at_once(store):
    with pytest.raises(KeyError):
        await run(only_connection_errors, store=store)
    assert ATTEMPTS == [1]


def test_retry_backoff_grows_by_the_multiplier_up_to_the_maximum():
    policy = RetryPolicy(initial_backoff=1, multiplier=3, max_backoff=5, jitter=0)
    assert [policy.backoff(n) for n in (1, 2, 3)] == [1, 3, 5]


def test_retry_jitter_stays_within_its_fraction():
    policy = RetryPolicy(initial_backoff=10, jitter=0.1)
    assert all(9 <= policy.backoff(1) <= 11 for _ in range(200))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"initial_backoff": -1}, "initial_backoff"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"retry_on": ("not a type",)}, "retry_on"),
    ],
)
def test_retry_policy_refuses_nonsense(arguments, message):
    with pytest.raises((ValueError, TypeError), match=message):
        RetryPolicy(**arguments)


def test_retry_must_be_a_retry_policy():
    with pytest.raises(TypeError, match="RetryPolicy"):
        durable_execute(flaky, "o1", retry={"max_attempts": 3})


# -- @step ----------------------------------------------------------------------------------
CHARGES: dict[str, int] = {}


def charged_in_ledger(order: str) -> str:
    LOG.append(("reconcile", order))
    if order in CHARGES:
        return f"charged {order}"
    raise NotApplied


@step(reconciler=charged_in_ledger)
def charge_step(order: str) -> str:
    CHARGES[order] = CHARGES.get(order, 0) + 1
    LOG.append(("charge", order))
    return f"charged {order}"


@step
async def notify(order: str) -> str:
    LOG.append(("notify", order))
    return f"notified {order}"


@make_durable
async def order_flow(order):
    receipt = await charge_step(order)
    note = await notify(order)
    return receipt, note


@pytest.fixture(autouse=True)
def fresh_charges():
    CHARGES.clear()


async def test_a_step_inside_a_durable_function_is_journaled(store):
    assert await run(order_flow, "o1", store=store) == ("charged o1", "notified o1")
    # start, PENDING + SUCCEEDED of the reconciled step, the plain step, completion
    assert store.counter.writes == 5


async def test_a_step_outside_a_durable_run_is_a_plain_call():
    assert await charge_step("o1") == "charged o1"
    assert await notify("o1") == "notified o1"
    assert LOG == [("charge", "o1"), ("notify", "o1")]


async def test_a_step_reconciler_gets_the_arguments_of_the_call(store):
    store.counter.crash_after = 2  # the step's PENDING entry; the charge has not happened
    with pytest.raises(SimulatedCrash):
        await run(order_flow, "o1", store=store)
    assert await run(order_flow, "o1", store=store) == ("charged o1", "notified o1")
    assert LOG == [("reconcile", "o1"), ("charge", "o1"), ("notify", "o1")]
    assert CHARGES == {"o1": 1}


async def test_a_step_replays_after_a_crash_without_running_again(store):
    store.counter.crash_after = 3  # the step's SUCCEEDED entry
    with pytest.raises(SimulatedCrash):
        await run(order_flow, "o1", store=store)
    assert await run(order_flow, "o1", store=store) == ("charged o1", "notified o1")
    assert CHARGES == {"o1": 1}
    assert LOG == [("charge", "o1"), ("notify", "o1")]


@step(retry=FAST)
def flaky_step(order: str) -> str:
    return flaky(order)


@make_durable
async def retried_step_flow(order):
    return await flaky_step(order)


async def test_a_step_with_a_retry_policy_is_retried_and_each_failure_journaled(store):
    assert await run(retried_step_flow, "o1", store=store) == "charged o1 on attempt 3"
    assert ATTEMPTS == [1, 2, 3]
    assert store.counter.writes == 5  # start, two failed attempts, SUCCEEDED, completion


def test_a_step_keeps_the_name_and_docstring_of_its_function():
    assert charge_step.__name__ == "charge_step"
    assert charge_step.__wrapped__.__name__ == "charge_step"


def test_step_refuses_a_reconciler_that_is_not_callable():
    with pytest.raises(TypeError, match="reconciler must be callable"):
        step(reconciler="ledger")(flaky)


# -- events and timeouts are journaled --------------------------------------------------------
@make_durable
async def wait_with_timeout():
    try:
        payload = await wait_for_event("approve", timeout=0.0)
    except EventTimeoutError:
        payload = "timed out"
    raise PauseForEventException("next")
    return payload


async def test_a_timeout_is_journaled_so_a_later_event_does_not_change_the_outcome(store):
    # start, the timeout (FAILED entry), then die before the next wait is saved
    store.counter.crash_after = 2
    with pytest.raises(SimulatedCrash):
        await run(wait_with_timeout, store=store)
    backend = DurableBackend(store)
    backend.publish_event("i1", "approve", "too late")
    backend.publish_event("i1", "next")
    assert await run(wait_with_timeout, store=store) == "timed out"
    assert [e.name for e in DurableBackend(store).pending_events("i1")] == ["approve"]


@make_durable
async def two_waits():
    first = await wait_for_event("item")
    second = await wait_for_event("item")
    return first, second


async def test_a_consumed_event_is_journaled_so_a_crash_neither_loses_nor_repeats_it(store):
    backend = DurableBackend(store)
    backend.publish_event("i1", "item", 1)
    backend.publish_event("i1", "item", 2)
    store.counter.crash_after = 2  # the first consumption is journaled, then the process dies
    with pytest.raises(SimulatedCrash):
        await run(two_waits, store=store)
    assert await run(two_waits, store=store) == (1, 2)
