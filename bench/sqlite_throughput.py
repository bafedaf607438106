"""Steps per second on SQLite, one instance, 32 and 256 at a time, with and without group commit.

Run: python bench/sqlite_throughput.py [--steps N] [--runs R] [--quick] [--dir PATH]

Each instance runs a durable function of N (150) `await durable_execute(work, i)` steps (one store
write each) over `DurableBackend(SQLiteStateStore(path))`; 32 instances run concurrently on
one event loop. Without group commit every write is its own transaction (one fsync of the
WAL each); with `SQLiteStateStore(path, group_commit=True)` the writes of the instances share
transactions, and no step goes on before its transaction has committed. Prints steps/s of
each, median of the runs, and the ratio at 32 instances (target >= 5x); then 256 instances
with group commit (target >= 20,000 steps/s).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import DurableBackend, SQLiteStateStore, durable_execute, make_durable  # noqa: E402


def work(i: int) -> int:
    return i + 1


@make_durable
async def steps(count: int) -> int:
    total = 0
    for i in range(count):
        total += await durable_execute(work, i)
    return total


async def throughput(directory: Path, instances: int, count: int, group_commit: bool) -> float:
    store = SQLiteStateStore(directory / "bench.db", group_commit=group_commit)
    backend = DurableBackend(store)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            steps(count, orchestration_backend=backend, instance_id=f"i{n}")
            for n in range(instances)
        )
    )
    elapsed = time.perf_counter() - started
    store.close()
    return instances * count / elapsed


def measure(root: Path, instances: int, count: int, group_commit: bool, runs: int) -> float:
    results = []
    for _ in range(runs):
        directory = Path(tempfile.mkdtemp(dir=root))
        try:
            results.append(asyncio.run(throughput(directory, instances, count, group_commit)))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="steps per instance")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer steps and runs")
    parser.add_argument("--dir", default=None, help="where the databases go")
    options = parser.parse_args()
    count, runs = (10, 1) if options.quick else (options.steps, options.runs)
    root = Path(options.dir or tempfile.gettempdir())
    print(f"SQLite steps/s, {count} steps per instance, median of {runs} runs")
    figures = {}
    for instances in (1, 32):
        for group_commit in (False, True):
            rate = measure(root, instances, count, group_commit, runs)
            figures[instances, group_commit] = rate
            label = "group commit" if group_commit else "one transaction per step"
            print(f"  {instances:2d} instance(s), {label:26s} {rate:10,.0f} steps/s")
    ratio = figures[32, True] / figures[32, False]
    print(f"  32 instances: group commit / one transaction per step = {ratio:.1f}x (target >= 5x)")
    rate = measure(root, 256, count, True, runs)
    print(f"  256 instances, group commit {rate:17,.0f} steps/s (target >= 20,000)")


if __name__ == "__main__":
    main()
