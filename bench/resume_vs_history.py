"""Resume cost against history length: an instance with 10 vs 10,000 completed steps.

Run: python bench/resume_vs_history.py [--runs N] [--quick] [--dir PATH]

For each history length H, a durable function does H `durable_execute` steps and then waits
at `raise PauseForEventException("go")`, over a `DiskStateStore`. Then, each measurement with
a new `DurableBackend(DiskStateStore(dir))` (a load as in a fresh process), alternating
between the two lengths, median of the runs:

1. resume without the event: the call loads the instance and raises PauseForEventException
   at once (nothing runs, nothing is written);
2. full resume: on a copy of the paused store directory (shutil.copytree, not timed), the
   event is published (not timed), then the timed call consumes it and finishes (two
   appended records and an inbox fsync).

Prints ms for H=10 and H=10,000 and their ratio. Targets: ratio <= 1.2 and < 10 ms each.
Snapshots with journal pruning (the default JournalPolicy) and compaction at 256 records
(`DurableBackend.compact_after`) keep the state small, so resume cost should not depend on
history length; what does vary is how many records the log holds since its last compaction
(1 to 256, set by H). For information, a third length just past 10,000 is measured whose
log holds the most records a log can hold (256), the worst case for any history. --quick
uses H=1,000 instead of 10,000 and fewer runs.
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

from durable import (  # noqa: E402
    DiskStateStore,
    DurableBackend,
    PauseForEventException,
    durable_execute,
    make_durable,
)

SHORT, LONG = 10, 10_000
INSTANCE = "history"


def work(i):
    return i + 1


async def steps_then_wait(h):
    total = 0
    for i in range(h):
        total += await durable_execute(work, i)
    raise PauseForEventException("go")
    return total


durable_steps_then_wait = make_durable(steps_then_wait)


async def prepare(root: Path, h: int) -> tuple[Path, int]:
    """A store directory holding one instance paused at the wait point after `h` steps, and
    the number of records in its log."""
    directory = root / f"paused-{h}"
    backend = DurableBackend(DiskStateStore(directory))
    try:
        await durable_steps_then_wait(h, orchestration_backend=backend, instance_id=INSTANCE)
    except PauseForEventException:
        pass
    else:
        raise AssertionError("the instance did not pause")
    records = len(backend.store.read_records(INSTANCE))
    size = (directory / "state" / f"{INSTANCE}.log").stat().st_size
    print(f"  H={h:>6,}: paused log holds {records} records, {size:,} bytes")
    return directory, records


async def resume_without_event(directory: Path, h: int) -> float:
    backend = DurableBackend(DiskStateStore(directory))
    started = time.perf_counter()
    try:
        await durable_steps_then_wait(h, orchestration_backend=backend, instance_id=INSTANCE)
    except PauseForEventException:
        elapsed = time.perf_counter() - started
    else:
        raise AssertionError("the instance resumed without its event")
    return elapsed


async def full_resume(paused: Path, scratch: Path, h: int) -> float:
    directory = Path(tempfile.mkdtemp(prefix=f"copy-{h}-", dir=scratch))
    shutil.rmtree(directory)
    shutil.copytree(paused, directory)
    backend = DurableBackend(DiskStateStore(directory))
    backend.publish_event(INSTANCE, "go")
    started = time.perf_counter()
    result = await durable_steps_then_wait(h, orchestration_backend=backend, instance_id=INSTANCE)
    elapsed = time.perf_counter() - started
    assert result == h * (h + 1) // 2, result
    shutil.rmtree(directory)
    return elapsed


async def alternate(measure, lengths: list[int], runs: int) -> dict[int, float]:
    """Median seconds of `measure(h)` for each length, rotating which goes first."""
    times: dict[int, list[float]] = {h: [] for h in lengths}
    for run in range(runs):
        shift = run % len(lengths)
        for h in lengths[shift:] + lengths[:shift]:
            times[h].append(await measure(h))
    return {h: statistics.median(values) for h, values in times.items()}


def report(title: str, runs: int, medians: dict[int, float], worst: int) -> None:
    print(f"{title}, median of {runs}")
    short = medians[SHORT]
    for h, median in medians.items():
        note = "(for information: the longest log)" if h == worst else "(target < 10 ms)"
        print(f"  H={h:>6,}   {median * 1e3:8.3f} ms   {note}")
    print(f"  ratio H={LONG:,} / H={SHORT}        {medians[LONG] / short:7.3f}x   (target <= 1.2x)")
    print(
        f"  ratio H={worst:,} / H={SHORT}        {medians[worst] / short:7.3f}x   (for information)"
    )


async def main_async(root: Path, runs: int) -> None:
    print(f"Preparing paused instances on a DiskStateStore under {root.parent}")
    paused = {}
    for h in (SHORT, LONG):
        paused[h], records = await prepare(root, h)
    # Each step appends one record until the log is compacted: these steps fill it up.
    worst = LONG + DurableBackend().compact_after - records
    if worst != LONG:
        paused[worst], _ = await prepare(root, worst)
    lengths = list(paused)
    scratch = root / "scratch"
    scratch.mkdir()
    for h in lengths:  # warm up: imports, code paths, the page cache
        await resume_without_event(paused[h], h)
        await full_resume(paused[h], scratch, h)
    medians = await alternate(lambda h: resume_without_event(paused[h], h), lengths, runs)
    report("Resume with no event (loads, raises PauseForEventException)", runs, medians, worst)
    medians = await alternate(lambda h: full_resume(paused[h], scratch, h), lengths, runs)
    report("Full resume after publish_event (consumes it, finishes)", runs, medians, worst)


def main() -> None:
    global LONG
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=51, help="measurements of each length")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (H=1,000, 7 runs)")
    parser.add_argument("--dir", default=None, help="where the store directories are made")
    args = parser.parse_args()
    runs = 7 if args.quick else max(args.runs, 5)
    if args.quick:
        LONG = 1_000
    root = Path(tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir))
    try:
        asyncio.run(main_async(root, runs))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
