"""Sleeping instances: what instances parked in a long `durable.sleep` cost a worker, and how
late a parked sleep wakes.

Run: python bench/sleepers.py [--sleepers N] [--timers T] [--quick] [--dir PATH]

One `Worker` (concurrency 8, polling every 0.01 to 0.2 s) over `SQLiteStateStore` in a
temporary directory, on the event loop of this script; `nap` does ``await sleep(seconds)``
and returns ``time.time()``.

1. N (10,000) instances of `nap` sleeping one week are started with ``nap.start``, then the
   worker runs them all until every one is parked (status ``sleeping``: more than
   `park_sleeps_after`, 1 s, left). Prints the worker's running count, the asyncio tasks
   alive, the open file descriptors (a lease is an open lock file; a parked instance holds
   none), and the process RSS growth per parked instance (from after a first instance, which
   compiles `nap`, to all parked), against N plain ``asyncio.create_task(asyncio.sleep(week))``
   tasks (what a sleep inside a run holds), measured by this script in a fresh interpreter
   first (so neither side reuses memory the other freed); and the ratio. Then the CPU the
   process uses in 2 s with all of them parked.
2. With the N still parked, T (200) instances sleeping 1.2 to 3 s, spread evenly (so they
   park too). Lateness = the time `nap` returns after its sleep minus its deadline, taken
   as ``time.time() + seconds`` just before ``nap.start``; median and p99, ms. That includes
   the wait until the worker first runs the instance (up to its 0.2 s poll: ``nap.start``
   does not wake it), where the sleep's wake-up time is journaled, so the lateness against
   that journaled time, read from the store while the instance sleeps, is printed too.
   Baseline in the same event loop, the worker still running: plain ``asyncio.sleep`` of
   the same durations. Prints all three and the ratios.
3. The time to park the N (instances/s): the worker starting on a backlog of N enqueued
   instances; and the time ``nap.start`` took for them.
4. The Python memory a parked instance holds (tracemalloc current bytes after
   ``gc.collect()``): N more instances started and parked while the worker runs, under
   tracemalloc, against N plain sleeping tasks under tracemalloc (in the fresh interpreter
   of section 1, after its RSS figure).

Instance counts come from the store's own index table (one ``COUNT`` on a read-only
connection); `durable.list_instances` reads every instance, so it is called once, at the
end, to check the count. The script stops with an error if parking makes no progress for
60 s, or a timer has not returned 30 s after its deadline.
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
import subprocess
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


@make_durable
async def nap(seconds: float) -> float:
    await sleep(seconds)
    return time.time()


# -- measuring --------------------------------------------------------------------------------
def rss() -> int:
    """Resident set size of this process after a collection, bytes (the peak where there is
    no /proc)."""
    gc.collect()
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def open_descriptors() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


def counts(path: Path) -> dict[str, int]:
    """Instances per status, from the store's index table (read-only connection)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT status, COUNT(*) FROM instances GROUP BY status")
        return dict(rows.fetchall())
    finally:
        connection.close()


async def until_sleeping(path: Path, target: int, worker: Worker) -> None:
    """Wait until `target` instances are sleeping; exit if none parks for `STALL` seconds."""
    last, since = -1, time.monotonic()
    while (now := counts(path).get("sleeping", 0)) < target:
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > STALL:
            raise SystemExit(
                f"stalled: {now:,} of {target:,} instances sleeping, none parked in {STALL:g} s "
                f"(statuses {counts(path)}, worker running {worker.running})"
            )
        await asyncio.sleep(0.05)


# -- baselines: plain asyncio -----------------------------------------------------------------
async def plain_tasks_memory(n: int, measure) -> float:
    """Growth of `measure()` per task, for `n` tasks in ``asyncio.sleep(WEEK)``."""
    before = measure()
    tasks = [asyncio.create_task(asyncio.sleep(WEEK)) for _ in range(n)]
    await asyncio.sleep(0)  # every task runs to its sleep and holds its timer
    await asyncio.sleep(0)
    grown = measure() - before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return grown / n


async def plain_tasks(n: int) -> tuple[float, float]:
    """RSS growth and tracemalloc growth per task of `n` plain sleeping tasks (each with
    tasks of its own, the RSS first, without tracemalloc)."""
    grown = await plain_tasks_memory(n, rss)
    tracemalloc.start()
    held = await plain_tasks_memory(n, traced)
    tracemalloc.stop()
    return grown, held


def plain_tasks_in_fresh_interpreter(n: int) -> tuple[float, float]:
    """`plain_tasks(n)`, measured by this file run in a fresh interpreter."""
    answer = subprocess.run(
        [sys.executable, __file__, "--plain-tasks", str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    grown, held = answer.stdout.split()
    return float(grown), float(held)


async def plain_lateness(durations: list[float]) -> list[float]:
    async def one(seconds: float) -> float:
        deadline = time.time() + seconds
        await asyncio.sleep(seconds)
        return time.time() - deadline

    return list(await asyncio.gather(*(one(seconds) for seconds in durations)))


# -- the durable side -------------------------------------------------------------------------
async def park(path: Path, backend: DurableBackend, sleepers: int, plain_rss: float):
    """Section 1; returns the worker, its task, its stop event and section 3's figures."""
    worker = Worker(backend, concurrency=8, min_poll=0.01, max_poll=0.2)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run(stop))
    # A first instance compiles `nap` and warms the store: not counted.
    await nap.start(WEEK, orchestration_backend=backend, instance_id="warm")
    await until_sleeping(path, 1, worker)
    stop.set()
    await loop_task
    rss_before, descriptors_before = rss(), open_descriptors()

    started = time.perf_counter()
    for i in range(sleepers):
        await nap.start(WEEK, orchestration_backend=backend, instance_id=f"s{i}")
    started_in = time.perf_counter() - started
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run(stop))
    parking = time.perf_counter()
    await until_sleeping(path, sleepers + 1, worker)
    parked_in = time.perf_counter() - parking
    await asyncio.sleep(0.3)  # the worker's round after the last run ended
    rss_after, descriptors_after = rss(), open_descriptors()
    running, tasks = len(worker.running), len(asyncio.all_tasks())
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(2.0)
    idle = resource.getrusage(resource.RUSAGE_SELF)
    idle_cpu = (idle.ru_utime + idle.ru_stime - cpu.ru_utime - cpu.ru_stime) / 2.0

    grown = (rss_after - rss_before) / sleepers
    print(f"1. {sleepers:,} instances parked in a one-week sleep")
    print(f"  worker running             {running}")
    print(f"  asyncio tasks alive        {tasks} (this script's, the worker's loop and its waits)")
    print(f"  open file descriptors      {descriptors_before} before, {descriptors_after} after")
    print(
        f"  RSS growth                 {grown:8.0f} B/instance "
        f"({(rss_after - rss_before) / 2**20:.1f} MiB)"
    )
    print(
        f"  baseline: plain tasks      {plain_rss:8.0f} B/task "
        f"({plain_rss * sleepers / 2**20:.1f} MiB for {sleepers:,} asyncio.sleep tasks)"
    )
    print(f"  ratio                      {grown / plain_rss:8.3f}x")
    print(f"  CPU with all parked        {idle_cpu * 100:.1f}% of a core (2 s)")
    return worker, stop, loop_task, started_in, parked_in


async def timers(path: Path, store, backend, worker: Worker, count: int) -> None:
    """Section 2."""
    span = TIMER_LONGEST - TIMER_SHORTEST
    durations = [TIMER_SHORTEST + span * i / max(1, count - 1) for i in range(count)]
    deadlines: dict[str, float] = {}
    handles = {}
    for i, seconds in enumerate(durations):
        instance_id = f"t{i}"
        deadlines[instance_id] = time.time() + seconds
        handles[instance_id] = await nap.start(
            seconds, orchestration_backend=backend, instance_id=instance_id
        )
    journaled: dict[str, float] = {}
    while len(journaled) < count and time.time() < min(deadlines.values()):
        for instance_id in deadlines.keys() - journaled.keys():
            summary = store.summary(instance_id)
            if summary is not None and summary.status == "sleeping":
                journaled[instance_id] = summary.wake_at
        await asyncio.sleep(0.02)
    last = max(deadlines.values())
    while counts(path).get("completed", 0) < count:
        if time.time() > last + 30:
            raise SystemExit(
                f"timers late: {counts(path)} 30 s after the last deadline "
                f"(worker running {worker.running})"
            )
        await asyncio.sleep(0.1)
    returned = {i: await handle.result(timeout=5) for i, handle in handles.items()}
    late = [(returned[i] - deadlines[i]) * 1e3 for i in deadlines]
    woken = [(returned[i] - journaled[i]) * 1e3 for i in journaled]
    plain = [seconds * 1e3 for seconds in await plain_lateness(durations)]
    print(f"2. lateness of {count} timers of {TIMER_SHORTEST}-{TIMER_LONGEST} s, ms")
    print(f"  {'':38s} {'median':>7s} {'p99':>7s} {'max':>7s}")
    rows = [
        ("parked sleep, from nap.start", late),
        (f"parked sleep, journaled wake-up ({len(woken)})", woken),
        ("baseline: plain asyncio.sleep", plain),
    ]
    for label, values in rows:
        if values:
            print(
                f"  {label:38s} {statistics.median(values):7.1f} "
                f"{percentile(values, 0.99):7.1f} {max(values):7.1f}"
            )
    for label, values in rows[:2]:
        if values:
            print(
                f"  ratio, {label[14:]:31s} {statistics.median(values) / statistics.median(plain):6.1f}x "
                f"{percentile(values, 0.99) / percentile(plain, 0.99):6.1f}x"
            )


async def held_memory(path: Path, backend, worker: Worker, sleepers: int, plain: float) -> None:
    """Section 4 (the worker running, `sleepers` + 1 parked)."""
    tracemalloc.start()
    before = traced()
    for i in range(sleepers):
        await nap.start(WEEK, orchestration_backend=backend, instance_id=f"m{i}")
    await until_sleeping(path, 2 * sleepers + 1, worker)
    await asyncio.sleep(0.3)
    held = (traced() - before) / sleepers
    tracemalloc.stop()
    print(f"4. Python memory held (tracemalloc), {sleepers:,} more instances parked")
    print(f"  parked instance            {held:8.0f} B/instance")
    print(f"  baseline: plain task       {plain:8.0f} B/task")
    print(f"  ratio                      {held / plain:8.3f}x")


async def bench(root: Path, sleepers: int, timer_count: int) -> None:
    print(f"Sleeping instances: one worker (concurrency 8), SQLiteStateStore under {root.parent}")
    plain_rss, plain_traced = plain_tasks_in_fresh_interpreter(sleepers)
    path = root / "sleepers.db"
    store = SQLiteStateStore(path)
    backend = DurableBackend(store)
    worker, stop, loop_task, started_in, parked_in = await park(path, backend, sleepers, plain_rss)
    try:
        await timers(path, store, backend, worker, timer_count)
        print(f"3. parking {sleepers:,} instances")
        print(
            f"  nap.start, worker stopped  {started_in:6.1f} s {sleepers / started_in:8,.0f} instances/s"
        )
        print(
            f"  worker parks the backlog   {parked_in:6.1f} s {sleepers / parked_in:8,.0f} instances/s"
        )
        await held_memory(path, backend, worker, sleepers, plain_traced)
        listed = len(list_instances(backend, status="sleeping"))
        print(
            f"  (list_instances: {listed:,} sleeping of {2 * sleepers + 1:,} parked; "
            f"worker running {len(worker.running)}, asyncio tasks {len(asyncio.all_tasks())})"
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
    parser.add_argument("--plain-tasks", type=int, default=None, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.plain_tasks is not None:
        print(*asyncio.run(plain_tasks(options.plain_tasks)))
        return
    sleepers, timer_count = (1_000, 50) if options.quick else (options.sleepers, options.timers)
    root = Path(tempfile.mkdtemp(prefix="sleepers-", dir=options.dir))
    try:
        asyncio.run(bench(root, sleepers, timer_count))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
