"""A worker keeps nothing per instance once its run ends: over many parked or finished
instances its backend holds no per-instance bookkeeping."""

from __future__ import annotations

import asyncio

from durable import DurableBackend, SQLiteStateStore
from durable.worker import Worker

from . import operated


async def test_a_worker_over_parked_and_finished_instances_keeps_nothing_per_instance(
    tmp_path, ledger
):
    backend = DurableBackend(SQLiteStateStore(tmp_path / "store.db"), secret_key=b"k")
    handles = [
        await operated.nap.start(
            ledger, 3600 if number % 2 else 0, orchestration_backend=backend,
            instance_id=f"n-{number}",
        )
        for number in range(40)
    ]  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(backend, min_poll=0.01, max_poll=0.05).run(stop))
    try:
        for _ in range(500):
            if {handle.status() for handle in handles} <= {"sleeping", "completed"}:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # a few more rounds, which read the parked instances
    finally:
        stop.set()
        await task
    assert {handle.status() for handle in handles} == {"sleeping", "completed"}
    kept = {name: len(getattr(backend, name)) for name in ("_ends", "_log_sizes", "_summaries")}
    assert kept == {"_ends": 0, "_log_sizes": 0, "_summaries": 0}
    assert not any(backend._claimed.values()) and len(backend._claimed) == 0
