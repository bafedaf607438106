"""The programs `postgres_throughput.py` runs on its workers (imported by them by name)."""

from __future__ import annotations

import asyncio
import os
import time

from durable import durable_execute, make_durable, wait_for_event


def work(i: int) -> int:
    return i + 1


async def until_go(path: str) -> float:
    """Waits (off the event loop's back) until the file `path` exists: every instance starts
    its steps at the same moment."""
    while not os.path.exists(path):
        await asyncio.sleep(0.005)
    return time.time()


@make_durable
async def steps(go: str, count: int) -> int:
    await durable_execute(until_go, go)
    total = 0
    for i in range(count):
        total += await durable_execute(work, i)
    return total


def now() -> float:
    return time.time()


@make_durable
async def answer() -> float:
    """Waits for the event "ping"; returns when it resumed (epoch seconds)."""
    await wait_for_event("ping")
    return await durable_execute(now)
