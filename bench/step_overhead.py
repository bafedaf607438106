"""Cost of one durable step: `await durable_execute(work, i)` against a plain call and a raw fsync.

Run: python bench/step_overhead.py [--runs N] [--quick] [--dir PATH]

1. In memory: a durable function doing N (2,000) `await durable_execute(work, i)` steps over
   `DurableBackend(InMemoryStateStore())`, against a plain `async def` doing N
   `await plain_call(i)`; alternating, median of the runs; prints the overhead per step,
   (durable - plain) / N (target <= 10 us), and the same with a `secret_key` (signed
   records and heads) for information.
2. On disk: the same durable function doing N (200) steps over
   `DurableBackend(DiskStateStore(tmpdir))` (one appended record and one fsync per step,
   compactions included), against a raw baseline that appends a record of the same size
   with `os.write` + `os.fsync` N times to one file; prints ms per step both ways and the
   ratio (target <= 1.3x). A durable step's cost is its marginal cost: the time of an
   instance of N steps minus that of an instance of none (which still creates the instance
   with its first write, takes its lease and records its completion), over N. Both figures
   are printed too. The record size is the log's size over its number of records, taken
   from an instance of fewer steps than a compaction. For information: the ratio against
   raw appends synced the way the store syncs them (fdatasync where the system has it), and
   the same with a reconciler (two writes per step), next to a baseline of two raw appends;
   and the ratio against what the store does under an instance's lease: raw writes into
   space reserved beforehand (`posix_fallocate`), each followed by fdatasync.

Temporary directories go under --dir (default: the system temporary directory), so the disk
being measured is the one that directory is on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import (  # noqa: E402
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    durable_execute,
    make_durable,
)
from durable.stores.disk import _sync_data, frame  # noqa: E402

MEMORY_STEPS = 2_000
DISK_STEPS = 200


def work(i):
    return i + 1


def settle_nothing():
    return None


async def plain_call(i):
    return work(i)


async def plain_steps(n):
    total = 0
    for i in range(n):
        total += await plain_call(i)
    return total


async def steps(n):
    total = 0
    for i in range(n):
        total += await durable_execute(work, i)
    return total


async def reconciled_steps(n):
    total = 0
    for i in range(n):
        total += await durable_execute(work, i, reconciler=settle_nothing)
    return total


durable_steps = make_durable(steps)
durable_reconciled_steps = make_durable(reconciled_steps)


async def timed(awaitable) -> float:
    started = time.perf_counter()
    await awaitable
    return time.perf_counter() - started


# -- 1. in memory ---------------------------------------------------------------------------
async def memory_overhead(runs: int, n: int, **options) -> tuple[float, float]:
    expected = await plain_steps(n)
    assert (
        await durable_steps(n, orchestration_backend=DurableBackend(), instance_id="warm")
        == expected
    )
    plain_times, durable_times = [], []
    for run in range(runs):
        backend = DurableBackend(InMemoryStateStore(), **options)
        durable = durable_steps(n, orchestration_backend=backend, instance_id=f"mem-{run}")
        if run % 2 == 0:
            plain_times.append(await timed(plain_steps(n)))
            durable_times.append(await timed(durable))
        else:
            durable_times.append(await timed(durable))
            plain_times.append(await timed(plain_steps(n)))
    return statistics.median(plain_times), statistics.median(durable_times)


# -- 2. on disk -----------------------------------------------------------------------------
def record_size(root: Path, program) -> float:
    """Mean framed size of a record of `program`'s log, over an instance of 40 steps (fewer
    than a compaction, so the log holds every write: start, the steps, completion)."""
    directory = Path(tempfile.mkdtemp(prefix="size-", dir=root))
    store = DiskStateStore(directory)
    asyncio.run(program(40, orchestration_backend=DurableBackend(store), instance_id="size"))
    records = store.read_records("size")
    size = (directory / "state" / "size.log").stat().st_size
    assert size == sum(len(frame(record)) for record in records)
    shutil.rmtree(directory)
    return size / len(records)


def raw_appends(
    root: Path, n: int, size: int, writes_per_step: int, sync=os.fsync, reserved: bool = False
) -> float:
    """Seconds for `n` steps of `writes_per_step` raw appends of `size` bytes + `sync` each
    (with `reserved`, written into space allocated beforehand, so the file size stays)."""
    path = Path(tempfile.mkdtemp(prefix="raw-", dir=root)) / "raw.log"
    record = os.urandom(size)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | (0 if reserved else os.O_APPEND), 0o600)
    try:
        if reserved:
            os.posix_fallocate(descriptor, 0, n * writes_per_step * size)
            os.fsync(descriptor)
        offset = 0
        started = time.perf_counter()
        for _ in range(n):
            for _ in range(writes_per_step):
                if reserved:
                    os.pwrite(descriptor, record, offset)
                    offset += size
                else:
                    os.write(descriptor, record)
                sync(descriptor)
        elapsed = time.perf_counter() - started
    finally:
        os.close(descriptor)
    shutil.rmtree(path.parent)
    return elapsed


def durable_on_disk(root: Path, program, n: int, run: int) -> float:
    directory = Path(tempfile.mkdtemp(prefix="durable-", dir=root))
    backend = DurableBackend(DiskStateStore(directory))
    elapsed = asyncio.run(
        timed(program(n, orchestration_backend=backend, instance_id=f"disk-{run}"))
    )
    shutil.rmtree(directory)
    return elapsed


def disk_overhead(root: Path, runs: int, n: int, program, writes_per_step: int):
    """(record size, median seconds of: n raw steps, an instance of n durable steps, an
    instance of none, n raw steps synced with fdatasync, and the same into reserved space)."""
    size = round(record_size(root, program))
    raw_times, durable_times, empty_times, datasync_times, reserved_times = [], [], [], [], []
    durable_on_disk(root, program, min(n, 10), -1)  # warm up
    for run in range(runs):
        measures = [
            lambda: raw_times.append(raw_appends(root, n, size, writes_per_step)),
            lambda: datasync_times.append(
                raw_appends(root, n, size, writes_per_step, sync=_sync_data)
            ),
            lambda: reserved_times.append(
                raw_appends(root, n, size, writes_per_step, sync=_sync_data, reserved=True)
            ),
            lambda run=run: durable_times.append(durable_on_disk(root, program, n, run)),
            lambda run=run: empty_times.append(durable_on_disk(root, program, 0, run + runs)),
        ]
        for measure in measures[run % 5 :] + measures[: run % 5]:
            measure()
    return (
        size,
        statistics.median(raw_times),
        statistics.median(durable_times),
        statistics.median(empty_times),
        statistics.median(datasync_times),
        statistics.median(reserved_times),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each variant")
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run (fewer steps and runs)"
    )
    parser.add_argument("--dir", default=None, help="where the disk benchmark writes")
    args = parser.parse_args()
    runs = 3 if args.quick else max(args.runs, 3)
    memory_steps = 200 if args.quick else MEMORY_STEPS
    disk_steps = 30 if args.quick else DISK_STEPS
    root = Path(tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir))
    try:
        plain, durable = asyncio.run(memory_overhead(runs, memory_steps))
        print(f"In-memory step, {memory_steps:,} steps per run, median of {runs} runs each")
        print(f"  plain awaited call  {plain / memory_steps * 1e6:8.2f} us/step")
        print(f"  durable_execute     {durable / memory_steps * 1e6:8.2f} us/step")
        print(
            f"  overhead            {(durable - plain) / memory_steps * 1e6:8.2f} us/step"
            "   (target <= 10 us)"
        )
        plain_signed, signed = asyncio.run(
            memory_overhead(runs, memory_steps, secret_key=b"bench key")
        )
        print(
            f"  signed (secret_key) {signed / memory_steps * 1e6:8.2f} us/step, overhead "
            f"{(signed - plain_signed) / memory_steps * 1e6:.2f} us/step   (for information: "
            "an HMAC chained to the record before, and a signed head)"
        )
        print(
            f"Disk step (DiskStateStore under {root.parent}), {disk_steps} steps per run, "
            f"median of {runs} runs each"
        )
        for label, program, writes, target in (
            ("no reconciler", durable_steps, 1, "   (target <= 1.3x)"),
            ("with reconciler", durable_reconciled_steps, 2, "   (for information)"),
        ):
            size, raw, durable, empty, datasync, reserved = disk_overhead(
                root, runs, disk_steps, program, writes
            )
            step = (durable - empty) / disk_steps
            raw_step = raw / disk_steps
            print(f"  {label}: {writes} write(s) per step, mean record {size} bytes")
            print(f"    raw write + fsync x{writes}  {raw_step * 1e3:8.3f} ms/step")
            print(f"    durable_execute        {step * 1e3:8.3f} ms/step")
            print(f"    ratio                  {step / raw_step:8.3f}x{target}")
            print(
                f"    (raw write + {_sync_data.__name__}, the store's own sync call: "
                f"{datasync / disk_steps * 1e3:.3f} ms/step, ratio {step * disk_steps / datasync:.3f}x)"
            )
            print(
                f"    (raw write into reserved space + {_sync_data.__name__}, as the store "
                f"appends under the lease: {reserved / disk_steps * 1e3:.3f} ms/step, "
                f"ratio {step * disk_steps / reserved:.3f}x)"
            )
            print(
                f"    (instance of {disk_steps} steps {durable * 1e3:.2f} ms, of none "
                f"{empty * 1e3:.2f} ms; whole instance / steps: "
                f"{durable / disk_steps * 1e3:.3f} ms/step, {durable / raw:.3f}x)"
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
