"""Durable functions for tests/worker, run by in-process workers and by
`python -m durable worker ... tests.worker.flows` in child processes."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import durable
from durable import EventTimeoutError, durable_execute, make_durable, sleep, wait_for_event


def append_line(path: str, line: str) -> str:
    with open(path, "a", encoding="utf-8") as ledger:
        ledger.write(line + "\n")
    return line


def lines(path: str) -> list[str]:
    """The lines of a ledger (none when it does not exist yet)."""
    try:
        return Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []


@make_durable
async def record(ledger: str, name: str) -> str:
    await durable_execute(append_line, ledger, name)
    return f"recorded {name}"


@make_durable
async def approval(request: str) -> str:
    decision = await wait_for_event("approve")
    return f"{request} approved by {decision['by']}"


@make_durable
async def approve_or_reject(request: str, timeout: float) -> str:
    which, decision = await durable.first(
        wait_for_event("approve"), wait_for_event("reject"), sleep(timeout)
    )
    return f"{request} {['approved', 'rejected', 'timed out'][which]}"


def stamp(ledger: str, label: str) -> float:
    now = time.time()
    append_line(ledger, f"{label} {now:.6f}")
    return now


@make_durable
async def nap(ledger: str, seconds: float = 0.5) -> float:
    """Sleeps durably between two stamped steps; returns the time between them."""
    started = await durable_execute(stamp, ledger, "start")
    await sleep(seconds)
    ended = await durable_execute(stamp, ledger, "end")
    return ended - started


@make_durable
async def ask_with_timeout(seconds: float = 0.3) -> str:
    try:
        answer = await wait_for_event("x", timeout=seconds)
    except EventTimeoutError:
        return "timed out"
    return f"answered {answer}"


#: How many `busy_step` calls run at once in this process, now and at most.
ACTIVE = {"now": 0, "most": 0}


async def busy_step(seconds: float) -> float:
    ACTIVE["now"] += 1
    ACTIVE["most"] = max(ACTIVE["most"], ACTIVE["now"])
    try:
        await asyncio.sleep(seconds)
    finally:
        ACTIVE["now"] -= 1
    return seconds


@make_durable
async def crowded(seconds: float) -> float:
    return await durable_execute(busy_step, seconds)


async def hold_until(started: str, release: str) -> str:
    """A side effect that lasts until the file `release` exists (the event loop stays free)."""
    append_line(started, "started")
    while not Path(release).exists():
        await asyncio.sleep(0.01)
    return "released"


@make_durable
async def two_steps(ledger: str, started: str, release: str) -> str:
    first = await durable_execute(hold_until, started, release)
    await durable_execute(append_line, ledger, "second")
    return first


@make_durable
async def broken(reason: str) -> None:
    raise LookupError(reason)


@make_durable
async def held_twice(
    ledger: str, first_started: str, first_release: str, then_started: str, then_release: str
) -> str:
    """Two side effects that each last until their release file exists, then a line."""
    await durable_execute(hold_until, first_started, first_release)
    await durable_execute(hold_until, then_started, then_release)
    await durable_execute(append_line, ledger, "held twice")
    return "released twice"


@dataclass
class Receipt:
    number: int


@make_durable
async def receipt(number: int) -> Receipt:
    return Receipt(number)


@make_durable
async def raising(error: Exception) -> None:
    raise error
