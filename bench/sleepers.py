"""Sleeping instances: what instances parked in a long `durable.sleep` cost a worker, and how
late a parked sleep wakes.

Run: python bench/sleepers.py [--sleepers N] [--timers T] [--quick] [--dir PATH]

One `Worker` (concurrency 8, polling every 0.01 to 0.2 s) over `SQLiteStateStore` in a
temporary directory, on the event loop of this script:

1. N (10,000) instances of `nap` (``await sleep(seconds)``, then return ``time.time()``)
   are started with ``nap.start`` to sleep one week, and the worker runs them until every
   one is parked (status ``sleeping``; more than `park_sleeps_after`, 1 s, left). Prints the
   worker's running count, the asyncio tasks alive, the open file descriptors (a parked
   instance holds no lease, and a lease is an open lock file) and the process RSS growth
   per parked instance, against the same number of plain
   ``asyncio.create_task(asyncio.sleep(week))`` tasks (what a sleep inside a run holds),
   measured first in the same run; and the ratio. Then the CPU the process spends in 2 s
   with all of them parked.
2. With the N still parked, T (200) `nap` instances sleeping 1.2 to 3 s, spread evenly
   (so they park too); lateness = the time `nap` returns after its sleep minus its deadline
   (``time.time() + seconds`` taken just before ``nap.start``), median and p99 in ms.
   Printed too: the lateness against the wake-up time the instance journaled (its first run
   starts a little after ``nap.start``), read from the store while it sleeps. Baseline in
   the same event loop, the worker still running: plain ``asyncio.sleep`` of the same
   durations. Prints both and the ratio.
3. The time to park the N instances (instances/s), and to start them (``nap.start``).
4. The Python memory a parked instance holds (tracemalloc current bytes, after
   ``gc.collect()``) against a plain sleeping task: N more instances are started and parked
   under tracemalloc, a few at a time (a backlog of enqueued instances makes the worker read
   many states per run, slower still under tracemalloc; retained memory does not depend on
   it), against N plain sleeping tasks under tracemalloc, measured first.

Instance counts come from the store's own index table (one ``COUNT`` on a read-only
connection); `durable.list_instances` reads every instance, so it is called once, to check
the final count. The process stops with an error if parking makes no progress for 60 s, or
a timer has not returned 30 s after its deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import DurableBackend, list_instances, make_durable, sleep  # noqa: E402
from durable.stores import SQLiteStateStore  # noqa: E402
from durable.worker import Worker  # noqa: E402

WEEK = 7 * 24 * 3600.0
TIMER_SHORTEST, TIMER_LONGEST = 1.2, 3.0
STALL = 60.0
#: Instances started at a time in the tracemalloc pass.
CHUNK = 50


@make_durable
async def nap(seconds: float) -> float:
    await sleep(seconds)
    return time.time()


# -- measuring --------------------------------------------------------------------------------
def rss() -> int:
    """Resident set size of this process, bytes (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def open_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def settled_rss() -> int:
    gc.collect()
    return rss()


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def counts(path: Path) -> dict[str, int]:
    """Instances per status, from the store's index table (read-only connection)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT status, COUNT(*) FROM instances GROUP BY status"
        ).fetchall()
    finally:
        connection.close()
    return {status: count for status, count in rows}


async def until_sleeping(path: Path, target: int, worker: Worker, poll: float = 0.05) -> None:
    """Wait until `target` instances are sleeping; exit if none parks for `STALL` seconds."""
    last, since = -1, time.monotonic()
    while True:
        now = counts(path).get("sleeping", 0)
        if now >= target:
            return
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > STALL:
            raise SystemExit(
                f"stalled: {now} of {target} instances sleeping, none parked in {STALL:g} s "
                f"(statuses {counts(path)}, worker running {len(worker.running)})"
            )
        await asyncio.sleep(poll)


# -- baseline: plain sleeping tasks -----------------------------------------------------------
async def plain_tasks_memory(n: int, measure) -> float:
    """Bytes (`measure()` growth) per task of `n` tasks in ``asyncio.sleep(WEEK)``."""
    before = measure()
    tasks = [asyncio.create_task(asyncio.sleep(WEEK)) for _ in range(n)]
    await asyncio.sleep(0)  # every task runs to its sleep and holds its timer
    await asyncio.sleep(0)
    grown = measure() - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    del tasks
    return grown / n


async def plain_lateness(durations: list[float]) -> list[float]:
    async def one(seconds: float) -> float:
        deadline = time.time() + seconds
        await asyncio.sleep(seconds)
        return time.time() - deadline

    return list(await asyncio.gather(*(one(seconds) for seconds in durations)))


# -- the durable side -------------------------------------------------------------------------
async def bench(root: Path, sleepers: int, timers: int) -> None:
    print(f"Sleeping instances: one worker (concurrency 8), SQLiteStateStore under {root}")
    print(f"  {sleepers:,} sleepers of one week, {timers} timers of {TIMER_SHORTEST}-{TIMER_LONGEST} s")

    plain_rss = await plain_tasks_memory(sleepers, settled_rss)
    tracemalloc.start()
    plain_traced = await plain_tasks_memory(sleepers, traced)
    tracemalloc.stop()
    gc.collect()

    path = root / "sleepers.db"
    store = SQLiteStateStore(path)
    backend = DurableBackend(store)
    worker = Worker(backend, concurrency=8, min_poll=0.01, max_poll=0.2)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.sleep(0.05)
        rss_before, fds_before = settled_rss(), open_descriptors()

        # 1 and 3: park the sleepers.
        started = time.perf_counter()
        for i in range(sleepers):
            await nap.start(WEEK, orchestration_backend=backend, instance_id=f"s{i}")
        started_in = time.perf_counter() - started
        await until_sleeping(path, sleepers, worker)
        parked_in = time.perf_counter() - started
        rss_after, fds_after = settled_rss(), open_descriptors()
        await asyncio.sleep(0.3)  # the worker's round after the last run ended
        running, tasks = len(worker.running), len(asyncio.all_tasks())
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        await asyncio.sleep(2.0)
        idle = resource.getrusage(resource.RUSAGE_SELF)
        idle_cpu = (idle.ru_utime + idle.ru_stime - cpu.ru_utime - cpu.ru_stime) / 2.0

        durable_rss = (rss_after - rss_before) / sleepers
        print(f"1. {sleepers:,} instances parked in a one-week sleep")
        print(f"  worker running          {running}")
        print(f"  asyncio tasks alive     {tasks} (this script's, the worker's loop, its waits)")
        print(f"  open file descriptors   {fds_before} before, {fds_after} after")
        print(
            f"  RSS growth              {durable_rss:8.0f} B/instance "
            f"({(rss_after - rss_before) / 2**20:.1f} MiB)"
        )
        print(
            f"  baseline: plain tasks   {plain_rss:8.0f} B/task "
            f"({plain_rss * sleepers / 2**20:.1f} MiB for {sleepers:,} asyncio.sleep tasks)"
        )
        print(f"  ratio                   {durable_rss / plain_rss:8.3f}x")
        print(f"  CPU with all parked     {idle_cpu * 100:.1f}% of a core (2 s)")

        # 2: short timers, with the sleepers parked.
        span = TIMER_LONGEST - TIMER_SHORTEST
        durations = [
            TIMER_SHORTEST + span * i / max(1, timers - 1) for i in range(timers)
        ]
        deadlines: dict[str, float] = {}
        handles = {}
        for i, seconds in enumerate(durations):
            instance_id = f"t{i}"
            deadlines[instance_id] = time.time() + seconds
            handles[instance_id] = await nap.start(
                seconds, orchestration_backend=backend, instance_id=instance_id
            )
        journaled: dict[str, float] = {}
        while True:  # read each timer's wake-up time while it sleeps
            for instance_id in deadlines:
                if instance_id not in journaled:
                    summary = store.summary(instance_id)
                    if summary is not None and summary.status == "sleeping":
                        journaled[instance_id] = summary.wake_at
            if len(journaled) == timers or time.time() > min(deadlines.values()):
                break
            await asyncio.sleep(0.05)
        last = max(deadlines.values())
        while counts(path).get("completed", 0) < timers:
            if time.time() > last + 30:
                raise SystemExit(
                    f"timers late: {counts(path)} 30 s after the last deadline "
                    f"(worker running {worker.running})"
                )
            await asyncio.sleep(0.1)
        returned = {i: await h.result(timeout=5) for i, h in handles.items()}
        late = [(returned[i] - deadlines[i]) * 1e3 for i in deadlines]
        late_woken = [(returned[i] - journaled[i]) * 1e3 for i in journaled]
        plain = [seconds * 1e3 for seconds in await plain_lateness(durations)]
        print(f"2. lateness of {timers} timers of {TIMER_SHORTEST}-{TIMER_LONGEST} s, ms")
        print(f"  {'':34s} {'median':>8s} {'p99':>8s} {'max':>8s}")
        for label, values in (
            ("parked durable sleep", late),
            (f"  vs journaled wake-up ({len(journaled)} parked)", late_woken),
            ("baseline: plain asyncio.sleep", plain),
        ):
            if values:
                print(
                    f"  {label:34s} {statistics.median(values):8.1f} "
                    f"{percentile(values, 0.99):8.1f} {max(values):8.1f}"
                )
        print(
            f"  ratio (median, p99)                {statistics.median(late) / statistics.median(plain):7.1f}x "
            f"{percentile(late, 0.99) / percentile(plain, 0.99):7.1f}x"
        )

        print("3. parking")
        print(
            f"  nap.start x {sleepers:,}          {started_in:6.1f} s   "
            f"{sleepers / started_in:8,.0f} instances/s"
        )
        print(
            f"  started and all parked    {parked_in:6.1f} s   {sleepers / parked_in:8,.0f} instances/s"
        )

        # 4: Python memory a parked instance holds, under tracemalloc.
        tracemalloc.start()
        before = traced()
        for first in range(0, sleepers, CHUNK):
            for i in range(first, min(sleepers, first + CHUNK)):
                await nap.start(WEEK, orchestration_backend=backend, instance_id=f"m{i}")
            await until_sleeping(path, sleepers + min(sleepers, first + CHUNK), worker, 0.01)
        await asyncio.sleep(0.3)
        durable_traced = (traced() - before) / sleepers
        tracemalloc.stop()
        listed = len(list_instances(backend, status="sleeping"))
        print(f"4. Python memory held, tracemalloc ({sleepers:,} more instances parked)")
        print(f"  parked instance         {durable_traced:8.0f} B/instance")
        print(f"  baseline: plain task    {plain_traced:8.0f} B/task")
        print(f"  ratio                   {durable_traced / plain_traced:8.3f}x")
        print(
            f"  (list_instances: {listed:,} sleeping of {2 * sleepers:,}; "
            f"worker running {len(worker.running)})"
        )
    finally:
        stop.set()
        await loop_task
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sleepers", type=int, default=10_000, help="instances parked a week")
    parser.add_argument("--timers", type=int, default=200, help="short parked sleeps timed")
    parser.add_argument("--quick", action="store_true", help="1,000 sleepers and 50 timers")
    parser.add_argument("--dir", default=None, help="where the database goes")
    options = parser.parse_args()
    sleepers, timers = (1_000, 50) if options.quick else (options.sleepers, options.timers)
    root = Path(tempfile.mkdtemp(prefix="sleepers-", dir=options.dir))
    try:
        asyncio.run(bench(root, sleepers, timers))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
