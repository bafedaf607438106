"""Durable functions the operating tests run: importable by name, so a worker or the command
line in another process finds them. Each appends what it does to a ledger file."""

from __future__ import annotations

import asyncio
import json

import pytest

from durable import (
    Cancelled,
    JournalPolicy,
    PauseForEventException,
    durable_execute,
    make_durable,
    sleep,
    wait_for_event,
)


def note(ledger: str, what: str) -> str:
    with open(ledger, "a") as file:
        file.write(json.dumps(what) + "\n")
    return what


def lines(ledger: str) -> list[str]:
    try:
        with open(ledger) as file:
            return [json.loads(line) for line in file]
    except FileNotFoundError:
        return []


#: Set by a test to make `charge` fail (in the process that runs it).
DECLINE = {"on": False}


def charge(ledger: str, amount: int) -> int:
    note(ledger, f"charge {amount}")
    if DECLINE["on"]:
        raise RuntimeError(f"card declined for {amount}")
    return amount


@make_durable
async def nap(ledger: str, seconds: float) -> str:
    await durable_execute(note, ledger, "before")
    await sleep(seconds)
    return await durable_execute(note, ledger, "after")


@make_durable
async def cancellable(ledger: str, steps: int) -> str:
    """Steps, then a wait; cancelled, its cleanup makes durable calls and it returns."""
    try:
        for number in range(steps):
            await durable_execute(note, ledger, f"step {number}")
            await asyncio.sleep(0.01)
        await wait_for_event("go")
    except Cancelled as cancelled:
        await durable_execute(note, ledger, f"cleanup {cancelled.reason}")
        return "cancelled"
    finally:
        await durable_execute(note, ledger, "finally")
    return "done"


@make_durable
async def sleeps_then_cleans_up(ledger: str) -> str:
    try:
        await sleep(3600)
    finally:
        await durable_execute(note, ledger, "finally")
    return "woke"


@make_durable
async def order(ledger: str, amount: int) -> tuple:
    shipped = await durable_execute(note, ledger, "ship")
    total = amount + 1
    await wait_for_event("pay")
    charged = await durable_execute(charge, ledger, total)
    return shipped, charged


@make_durable(journal=JournalPolicy(history_limit=5))
async def twenty_steps(ledger: str) -> None:
    for number in range(20):
        await durable_execute(note, ledger, str(number))


async def paused_order(backend, ledger: str, instance_id: str = "o"):
    """An `order` waiting for its payment, and its handle."""
    with pytest.raises(PauseForEventException):
        await order(ledger, 5, orchestration_backend=backend, instance_id=instance_id)
    return order.handle(instance_id, orchestration_backend=backend)


async def failed_order(backend, ledger: str, instance_id: str = "o"):
    """An `order` whose charge was declined, and its handle."""
    handle = await paused_order(backend, ledger, instance_id)
    backend.publish_event(instance_id, "pay")
    DECLINE["on"] = True
    try:
        with pytest.raises(RuntimeError, match="card declined"):
            await order(ledger, 5, orchestration_backend=backend, instance_id=instance_id)
    finally:
        DECLINE["on"] = False
    return handle
