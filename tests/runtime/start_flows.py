"""Durable functions for tests/runtime/test_start.py (importable by a second process)."""

from __future__ import annotations

import asyncio

from durable import DiskStateStore, DurableBackend, make_durable

RUNS: list = []


@make_durable
async def double(value: int) -> int:
    RUNS.append(("double", value))
    return value * 2


@make_durable
async def refuse(reason: str) -> None:
    raise LookupError(reason)


def run_in_this_process(store_dir: str, instance_id: str, value: int) -> None:
    backend = DurableBackend(DiskStateStore(store_dir))
    print(asyncio.run(double(value, orchestration_backend=backend, instance_id=instance_id)))
