"""Steps per second over PostgreSQL with 1, 4 and 8 worker processes, and event latency.

Run: python bench/postgres_throughput.py [--steps N] [--concurrency C] [--quick]

Starts a PostgreSQL server of its own (PostgreSQL's defaults: every commit flushed), or uses
the one ``DURABLE_TEST_POSTGRES`` names. For each count of workers W, W ``durable worker``
processes (``--concurrency C``, 8) share W * C * 2 instances of a program of N (50) durable
steps; every instance waits at its first step until a file appears, so all start at once, and
steps/s is all their steps over the time from then until the last completes.

The baseline, measured in the same run: one worker that gives every step its own transaction
(``--no-group-commit``). With group commit, the writes of a worker's concurrent instances
share transactions (one pipelined round trip for all of them). Goal: 4 workers >= 3x one.

Event latency: one idle worker (default polling, 0.05 to 1 s); instances wait for an event;
one at a time, the event is published and the time until the instance resumed is measured
(median, p99), against the worker's longest poll.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import pg_bench_flows as flows  # noqa: E402

from durable import DurableBackend  # noqa: E402
from durable.stores.url import store_from_url  # noqa: E402
from tests.postgres_server import running_server  # noqa: E402


def store_url(dsn: str, schema: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(dsn)
    return (
        f"postgresql://{parts.get('user', '')}@{parts.get('host', 'localhost')}:"
        f"{parts.get('port', 5432)}/{parts.get('dbname', 'postgres')}?schema={schema}"
    )


class Workers:
    """`count` `durable worker` processes over `url`, running the bench's programs."""

    def __init__(self, url: str, count: int, log_dir: Path, *options: str) -> None:
        self.logs = [log_dir / f"worker{n}.log" for n in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "durable", "worker", "--store", url,
                    "--min-poll", "0.01", *options, "pg_bench_flows",
                ],
                cwd=BENCH,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
            )
            for log in self.logs
        ]  # fmt: skip

    def wait_started(self) -> None:
        deadline = time.monotonic() + 30
        while not all("worker started" in log.read_text() for log in self.logs):
            for process, log in zip(self.processes, self.logs, strict=True):
                if process.poll() is not None:
                    raise RuntimeError(f"a worker ended:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("the workers did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


async def steps_per_second(
    dsn: str, workers: int, concurrency: int, count: int, group_commit: bool, tag: str
) -> float:
    url = store_url(dsn, f"bench_{tag}")
    store = store_from_url(url)
    backend = DurableBackend(store)
    directory = Path(tempfile.mkdtemp())
    go = directory / "go"
    instances = workers * concurrency * 2
    handles = [
        await flows.steps.start(str(go), count, instance_id=f"s{n}", orchestration_backend=backend)
        for n in range(instances)
    ]
    options = ["--concurrency", str(concurrency)]
    if not group_commit:
        options.append("--no-group-commit")
    pool = Workers(url, workers, directory, *options)
    try:
        pool.wait_started()
        await asyncio.sleep(0.5)  # every worker has taken its first instances
        started = time.time()
        go.touch()
        ends = []
        for handle in handles:
            await handle.result(timeout=600)
        ends = [backend.read_state(h.instance_id)["updated_at"] for h in handles]
    finally:
        pool.stop()
        store.close()
    return instances * (count + 1) / (max(ends) - started)


async def event_latency(dsn: str, rounds: int) -> tuple[float, float]:
    url = store_url(dsn, "bench_latency")
    store = store_from_url(url)
    backend = DurableBackend(store)
    handles = [
        await flows.answer.start(instance_id=f"a{n}", orchestration_backend=backend)
        for n in range(rounds)
    ]
    pool = Workers(url, 1, Path(tempfile.mkdtemp()))
    latencies = []
    try:
        pool.wait_started()
        for handle in handles:
            while handle.status() != "waiting":
                await asyncio.sleep(0.01)
        for handle in handles:
            await asyncio.sleep(0.3)  # the worker idles, as between events in real use
            published = time.time()
            backend.publish_event(handle.instance_id, "ping")
            latencies.append(await handle.result(timeout=30) - published)
    finally:
        pool.stop()
        store.close()
    latencies.sort()
    return statistics.median(latencies), latencies[
        min(len(latencies) - 1, int(len(latencies) * 0.99))
    ]


async def bench(dsn: str, count: int, concurrency: int, counts: list[int], rounds: int) -> None:
    print(f"PostgreSQL steps/s: {count} steps per instance, {concurrency} runs per worker")
    baseline = await steps_per_second(dsn, 1, concurrency, count, False, "baseline")
    print(f"  baseline: 1 worker, one transaction per step  {baseline:9,.0f} steps/s")
    rates = {}
    for workers in counts:
        rate = await steps_per_second(dsn, workers, concurrency, count, True, f"w{workers}")
        rates[workers] = rate
        print(
            f"  {workers} worker(s), group commit{'':18s}{rate:9,.0f} steps/s"
            f"   {rate / baseline:5.1f}x baseline   {rate / rates[counts[0]]:4.1f}x one worker"
        )
    median, p99 = await event_latency(dsn, rounds)
    print(f"event publish -> resume, {rounds} events, one idle worker (polling 0.01 to 1 s):")
    print(f"  median {median * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms (longest poll: 1000 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="fewer steps, workers and events")
    options = parser.parse_args()
    count, counts, rounds = (
        (10, [1, 4], 10) if options.quick else (options.steps, [1, 4, 8], options.events)
    )
    with running_server(flush_commits=True) as dsn:
        print(f"server: {dsn} ({os.cpu_count()} cores on this machine)")
        asyncio.run(bench(dsn, count, options.concurrency, counts, rounds))


if __name__ == "__main__":
    main()
