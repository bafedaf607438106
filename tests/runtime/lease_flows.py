"""Durable functions for tests/runtime/test_leases.py, run in child processes."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from durable import DurableBackend, InstanceBusyError, durable_execute, make_durable
from durable.stores import store_from_url


def hold_until(started: str, release: str) -> str:
    """A side effect that takes as long as the test wants: it runs until `release` exists."""
    Path(started).write_text("running")
    while not Path(release).exists():
        time.sleep(0.01)
    return "released"


@make_durable
async def long_step(started: str, release: str) -> str:
    outcome = await durable_execute(hold_until, started, release)
    return f"done: {outcome}"


def main(store_url: str, started: str, release: str) -> None:
    backend = DurableBackend(store_from_url(store_url))
    try:
        result = asyncio.run(
            long_step(started, release, orchestration_backend=backend, instance_id="job-1")
        )
    except InstanceBusyError as busy:
        print(f"busy: {busy}")
        sys.exit(3)
    print(result)
