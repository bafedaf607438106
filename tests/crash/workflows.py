"""Durable workflows for the crash tests, and the side effects they journal.

Every side effect appends one line to a ledger file in the directory given as the first
argument (O_APPEND, then fsync: a line written before SIGKILL is kept), so a test can count
how often each effect really happened across the processes of one crash point.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from pathlib import Path

from durable import (
    JournalPolicy,
    NotApplied,
    PauseForEventException,
    RetryPolicy,
    durable_execute,
    make_durable,
    sleep,
    step,
    wait_for_event,
)

EFFECTS = "effects.log"
CHARGES = "charges.log"
ATTEMPTS = "attempts.log"


# -- ledgers --------------------------------------------------------------------------------
def append_line(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, f"{line}\n".encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


# -- side effects ---------------------------------------------------------------------------
def record(ledger: str, name: str, value):
    """A side effect without reconciler (at least once): logs `name`, returns `value`."""
    append_line(Path(ledger) / EFFECTS, name)
    return value


def fail(ledger: str, name: str):
    append_line(Path(ledger) / EFFECTS, name)
    raise ValueError(f"{name} failed")


def charge(ledger: str, order: str, amount: int) -> str:
    """A payment: one ledger line per charge; the receipt is derived from the line."""
    append_line(Path(ledger) / CHARGES, f"{order} {amount}")
    return f"receipt-{order}-{amount}"


def find_charge(ledger: str, order: str, amount: int) -> str:
    """Reconciler of `charge`: the receipt when the ledger holds the charge, else NotApplied."""
    if f"{order} {amount}" in read_lines(Path(ledger) / CHARGES):
        return f"receipt-{order}-{amount}"
    raise NotApplied(f"{order} was never charged")


@step(reconciler=find_charge)
def charge_step(ledger: str, order: str, amount: int) -> str:
    append_line(Path(ledger) / CHARGES, f"{order} {amount}")
    return f"receipt-{order}-{amount}"


def flaky(ledger: str, name: str) -> str:
    """Fails while fewer than two attempts are in the attempts ledger, then succeeds."""
    path = Path(ledger) / ATTEMPTS
    earlier = sum(1 for line in read_lines(path) if line == name)
    append_line(path, name)
    if earlier < 2:
        raise ConnectionError(f"{name}: attempt {earlier + 1} failed")
    return f"{name} ok"


def doomed(ledger: str, name: str) -> str:
    """Fails on every attempt (each one logged)."""
    append_line(Path(ledger) / ATTEMPTS, name)
    raise ConnectionError(f"{name} is down")


def flaky_charge(ledger: str, order: str, amount: int) -> str:
    """A payment whose first two attempts fail before charging (each attempt logged)."""
    path = Path(ledger) / ATTEMPTS
    earlier = sum(1 for line in read_lines(path) if line == order)
    append_line(path, order)
    if earlier < 2:
        raise ConnectionError(f"{order}: payment service unavailable")
    return charge(ledger, order, amount)


RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.001, multiplier=1.0, jitter=0.0)


# -- workflows ------------------------------------------------------------------------------
@make_durable
async def for_loop(ledger: str) -> int:
    total = 0
    for i in range(3):
        total += await durable_execute(record, ledger, f"for-{i}", i * 10)
    return total


@make_durable
async def while_loop(ledger: str, limit: int) -> list[int]:
    seen = []
    n = 0
    while n < limit:
        seen.append(await durable_execute(record, ledger, f"while-{n}", n))
        n += 1
    return seen


@make_durable
async def if_else(ledger: str, values: list[int]) -> list[str]:
    labels = []
    for x in values:
        if x > 5:
            labels.append(await durable_execute(record, ledger, f"high-{x}", f"high {x}"))
        else:
            labels.append(await durable_execute(record, ledger, f"low-{x}", f"low {x}"))
    return labels


@make_durable
async def try_finally(ledger: str) -> list:
    steps = []
    try:
        steps.append(await durable_execute(record, ledger, "work", 1))
        await durable_execute(fail, ledger, "boom")
        steps.append("unreachable")
    except ValueError as error:
        message = str(error)
        steps.append(await durable_execute(record, ledger, "handled", message))
    finally:
        steps.append(await durable_execute(record, ledger, "cleanup", 3))
    return steps


@make_durable
async def child(ledger: str, name: str) -> int:
    value = await durable_execute(record, ledger, f"{name}-child", len(name))
    return value + 1


@make_durable
async def nested(ledger: str) -> list[int]:
    first = await child(ledger, "one")
    second = await child(ledger, "three")
    return [first, second]


@make_durable
async def gathered(ledger: str) -> list:
    results = await asyncio.gather(
        durable_execute(record, ledger, "gather-a", 1),
        durable_execute(
            charge,
            ledger,
            "gather-b",
            2,
            reconciler=functools.partial(find_charge, ledger, "gather-b", 2),
        ),
        durable_execute(record, ledger, "gather-c", 3),
    )
    return list(results)


@make_durable
async def retries(ledger: str) -> list[str]:
    outcome = [await durable_execute(flaky, ledger, "flaky", retry=RETRY)]
    try:
        await durable_execute(doomed, ledger, "doomed", retry=RETRY)
    except ConnectionError as error:
        message = str(error)
        outcome.append(f"gave up: {message}")
    return outcome


@make_durable
async def reconciled(ledger: str) -> list[str]:
    first = await charge_step(ledger, "order-1", 10)
    second = await durable_execute(
        charge,
        ledger,
        "order-2",
        20,
        reconciler=functools.partial(find_charge, ledger, "order-2", 20),
    )
    return [first, second]


@make_durable
async def unreconciled(ledger: str) -> int:
    a = await durable_execute(record, ledger, "effect-1", 1)
    b = await durable_execute(record, ledger, "effect-2", 2)
    return a + b


@make_durable
async def failing(ledger: str) -> None:
    await durable_execute(record, ledger, "before-failure", 1)
    raise RuntimeError("the workflow gave up")


@make_durable
async def retries_reconciled(ledger: str) -> str:
    return await durable_execute(
        flaky_charge,
        ledger,
        "order-9",
        90,
        reconciler=functools.partial(find_charge, ledger, "order-9", 90),
        retry=RETRY,
    )


@make_durable
async def gathered_exceptions(ledger: str) -> list:
    results = await asyncio.gather(
        durable_execute(fail, ledger, "gather-fail"),
        durable_execute(record, ledger, "gather-ok", 2),
        return_exceptions=True,
    )
    return [repr(result) for result in results]


@make_durable
async def gathered_retry(ledger: str) -> list:
    results = await asyncio.gather(
        durable_execute(flaky, ledger, "gather-flaky", retry=RETRY),
        durable_execute(record, ledger, "gather-plain", 2),
    )
    return list(results)


@make_durable
async def failing_child(ledger: str, name: str) -> str:
    await durable_execute(record, ledger, f"{name}-start", 1)
    await durable_execute(fail, ledger, f"{name}-fail")
    return "unreachable"


@make_durable
async def nested_failure(ledger: str) -> str:
    try:
        return await failing_child(ledger, "kid")
    except ValueError as error:
        message = str(error)
        return f"caught {message}"
    finally:
        await durable_execute(record, ledger, "parent-finally", 1)


@make_durable(journal=JournalPolicy(snapshot_every=3))
async def sparse_snapshots(ledger: str) -> list:
    """A snapshot with every third operation only: resuming replays the journal after it."""
    total = 0
    receipts = []
    for i in range(4):
        total += await durable_execute(record, ledger, f"sparse-{i}", i)
        if i == 1:
            receipts.append(await charge_step(ledger, "order-5", 50))
    return [total, receipts]


@make_durable
async def events_and_timer(ledger: str) -> list:
    """Consumes events published before the run (crash_test(events=...)) and sleeps."""
    payload = await wait_for_event("go")
    await sleep(0.01)
    raise PauseForEventException("continue")
    done = await durable_execute(record, ledger, f"got-{payload}", payload)
    return [payload, done]


@make_durable
async def parks(ledger: str) -> str:
    """Waits for an event nobody sends: every run ends paused."""
    await durable_execute(record, ledger, "before-wait", 1)
    payload = await wait_for_event("never")
    return payload


# -- for the harness's own tests --------------------------------------------------------------
def bump(directory: str) -> int:
    """A plain (not journaled) side effect: the number of times it has run in `directory`."""
    path = Path(directory) / "bumps.log"
    append_line(path, "bump")
    return len(read_lines(path))


@make_durable
async def not_crash_safe(ledger: str) -> int:
    count = bump(ledger)  # runs again when a crash loses the checkpoints after it
    await durable_execute(record, ledger, "after-bump", 1)
    return count


@make_durable
async def shrinking(shared: str) -> int:
    """Makes fewer store writes each time it runs (the runs share `shared`)."""
    calls = max(1, 3 - bump(shared))
    for i in range(calls):
        await durable_execute(record, shared, f"shrink-{i}", i)
    return 0


async def plain_async(value: int) -> int:
    """Not made durable: the harness makes it durable itself."""
    return value * 2


@make_durable
async def slow(seconds: float) -> None:
    await durable_execute(time.sleep, seconds)


NOT_A_FUNCTION = 42
