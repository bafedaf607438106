"""Large live state: an agent loop whose conversation grows to ~5 MB, step by step, per store.

Run: python bench/large_state.py [--modes full incremental] [--stores memory disk sqlite] [--steps N]
     [--runs N] [--resumes N] [--quick] [--dir PATH]

A durable function keeps a `conversation` list live across 100 steps; each step is
`await durable_execute(call_tool, step, size)`, a plain function returning a new message
``{"role": "tool", "content": <50,000-character str>}`` that the loop appends, so the
conversation ends at about 5 MB; then the instance waits at
`raise PauseForEventException("reviewed")`. Over each of `InMemoryStateStore`,
`DiskStateStore(tmpdir)` and `SQLiteStateStore(tmpfile)` (each a subclass counting the bytes
of the records the backend hands its `append_record` / `replace_records`), it prints:

1. record bytes written per step / the bytes the step added (the new message, pickled), over
   the steps of the run; for information the same over its last 10 steps, the appends and
   compactions (`replace_records`) the steps made, and for the disk and SQLite stores the
   bytes of the process's write() calls (`wchar` of /proc/self/io) over the record bytes of
   the whole run. Goal <= 2x.
2. the mean time of the last 10 steps / the same of the same loop whose messages are 2
   characters (the conversation ends at about 1.5 KB), median of the runs, alternating.
   A step's time runs from one `call_tool` call to the next: settling the call, its store
   write, the append and the next call's start. Goal <= 2x.
3. resume at step 100: a new `DurableBackend` over the same store (a new store object over
   the same directory or file) calls the paused instance, which loads, finds no event and
   raises `PauseForEventException` (nothing is written), against a bare `pickle.loads` of
   the final conversation's pickle; medians, alternating. Goal <= 1.5x.
4. the store's size once paused (disk: the files under its directory; SQLite: the database,
   its -wal and -shm files; memory: the bytes of the stored records and head) / the size of
   the final conversation's pickle. Goal <= 2x. For information: the largest ratio during
   the run of the log's record bytes to the state of the moment (what a resume then reads),
   and the store's files, paused and once the store is closed.

5. for the stores on disk, a resume in a fresh Python process (which imports this module,
   then times opening the store, loading and resuming the paused instance), median of 5.
   Goal: well under 100 ms.

Once, for reference: the bare pickle round trip (dumps + loads) of the final conversation.

`--modes` names the snapshot modes to measure, each on its own backends: `full` (every
checkpoint pickles and writes every live local again: ``DURABLE_OUT_OF_LINE=off``) and
`incremental` (the default: once a state is large, its large strings are written once and
referred to by key); each mode's ratios are against baselines of the same mode.
--quick: one run and 9 resumes (under a minute); the default is 5 runs and 25 resumes. Resume
and `pickle.loads` times of a 5 MB state are noisy (page faults: whether the allocator has
the memory at hand), hence medians of many, 3 loads per resume.
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import (  # noqa: E402
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    PauseForEventException,
    SQLiteStateStore,
    StateStore,
    durable_execute,
    make_durable,
)
from durable.runtime import out_of_line  # noqa: E402

STEPS = 100
MESSAGE_CHARS = 50_000
#: Content of the baseline's messages: 100 of them pickle to about 1.5 KB.
SMALL_MESSAGE_CHARS = 2
#: Steps at the end of a run whose mean is "the step at the end".
TAIL = 10
INSTANCE = "agent"
#: Snapshot mode -> whether large values go out of line (`durable.runtime.out_of_line`).
MODES: dict[str, bool] = {
    "full": False,  # every checkpoint writes every live local again
    "incremental": True,  # large strings written once, referenced by later snapshots
}
#: Bare `pickle.loads` measured per resume measured (they are cheap, and as noisy).
LOADS_PER_RESUME = 3
GOALS = {"bytes": 2.0, "step": 2.0, "resume": 1.5, "size": 2.0}


# -- the workflow ---------------------------------------------------------------------------
#: (characters, step) -> the content of that step's message, made once: a run makes its
#: contents before it starts, so that the tool call in a timed step costs only a lookup.
_contents: dict[tuple[int, int], str] = {}


def tool_content(step: int, chars: int) -> str:
    """The content of message `step`: `chars` pseudo-random hex characters."""
    content = _contents.get((chars, step))
    if content is None:
        content = random.Random(step).randbytes((chars + 1) // 2).hex()[:chars]
        _contents[chars, step] = content
    return content


def make_message(step: int, chars: int) -> dict[str, str]:
    return {"role": "tool", "content": tool_content(step, chars)}


def first_message() -> dict[str, str]:
    return {"role": "user", "content": "Plan the trip."}


class Probe:
    """What `call_tool` notes at each call: (perf_counter, record bytes written so far,
    compactions so far, bytes of records in the log)."""

    def __init__(self, store: CountingStore) -> None:
        self.store = store
        self.marks: list[tuple[float, int, int, int]] = []


_probe: Probe | None = None


def call_tool(step: int, chars: int) -> dict[str, str]:
    if _probe is not None:
        store = _probe.store
        _probe.marks.append((time.perf_counter(), store.written, store.replaces, store.log_bytes))
    return make_message(step, chars)


async def agent_loop(steps: int, chars: int) -> int:
    conversation = [first_message()]
    for step in range(steps):
        message = await durable_execute(call_tool, step, chars)
        conversation.append(message)
    raise PauseForEventException("reviewed")
    return len(conversation)


durable_agent_loop = make_durable(agent_loop)


def final_conversation(steps: int, chars: int) -> list[dict[str, str]]:
    return [first_message()] + [make_message(step, chars) for step in range(steps)]


def pickled(value: Any) -> bytes:
    return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)


# -- stores that count what they are given to write ------------------------------------------
class CountingStore(StateStore):
    """Counts the record bytes handed to `append_record` and `replace_records` (mixed in
    before a store class), and the bytes of records the log holds (one instance)."""

    written = 0
    appends = 0
    replaces = 0
    log_bytes = 0

    def append_record(self, instance_id, record, summary=None, **options):
        self.written += len(record)
        self.log_bytes += len(record)
        self.appends += 1
        return super().append_record(instance_id, record, summary, **options)

    def replace_records(self, instance_id, records, summary=None, **options):
        records = list(records)
        size = sum(map(len, records))
        self.written += size
        self.log_bytes = size
        self.replaces += 1
        return super().replace_records(instance_id, records, summary, **options)


class CountingInMemoryStore(CountingStore, InMemoryStateStore):
    pass


class CountingDiskStore(CountingStore, DiskStateStore):
    pass


class CountingSQLiteStore(CountingStore, SQLiteStateStore):
    pass


def files_under(where: Path) -> dict[str, int]:
    return {
        str(path.relative_to(where)): path.stat().st_size
        for path in sorted(where.rglob("*"))
        if path.is_file()
    }


@dataclass(frozen=True)
class StoreKind:
    label: str
    #: A store in the directory `where`, which holds nothing else (a new store object each
    #: call, but the same store for memory).
    open: Callable[[Path], CountingStore]
    #: Whether it keeps files (its size is theirs, and write() bytes say something about it).
    on_disk: bool


def memory_size(store: CountingStore) -> int:
    """Bytes an in-memory store holds for the instance: its records and head."""
    return sum(map(len, store.read_records(INSTANCE))) + len(store.read_head(INSTANCE) or b"")


_memory_stores: dict[Path, CountingStore] = {}


def open_memory(where: Path) -> CountingStore:
    """The one in-memory store of `where` (so a resume finds what the run left)."""
    return _memory_stores.setdefault(where, CountingInMemoryStore())


STORES = {
    "memory": StoreKind("InMemoryStateStore", open_memory, on_disk=False),
    "disk": StoreKind("DiskStateStore", lambda where: CountingDiskStore(where), on_disk=True),
    "sqlite": StoreKind(
        "SQLiteStateStore", lambda where: CountingSQLiteStore(where / "bench.db"), on_disk=True
    ),
}


def close(store: StateStore) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        closer()


def written_by_process() -> int | None:
    """Bytes this process has passed to write() calls so far (None where unknown)."""
    try:
        with open("/proc/self/io") as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# -- one run of the loop ----------------------------------------------------------------------
@dataclass
class LoopRun:
    where: Path
    #: Seconds, record bytes and compactions of each step but the last (from its call_tool
    #: to the next).
    step_seconds: list[float]
    step_bytes: list[int]
    step_compactions: list[int]
    #: Bytes of records in the log at each call_tool (the log as the step before left it).
    log_bytes: list[int]
    appends: int
    replaces: int
    #: Record bytes of the whole run (first write, steps, pause) and write() bytes meanwhile.
    run_bytes: int
    process_bytes: int | None
    store_size: int
    #: The store's files (relative path -> bytes), paused, then once the store is closed.
    files: dict[str, int]
    files_closed: dict[str, int]


async def run_loop(kind: StoreKind, mode: str, where: Path, steps: int, chars: int) -> LoopRun:
    global _probe
    for step in range(steps):
        tool_content(step, chars)
    store = kind.open(where)
    out_of_line.ENABLED = MODES[mode]
    backend = DurableBackend(store)
    _probe = probe = Probe(store)
    process_before = written_by_process()
    try:
        await durable_agent_loop(steps, chars, orchestration_backend=backend, instance_id=INSTANCE)
    except PauseForEventException:
        pass
    else:
        raise AssertionError("the loop did not pause")
    finally:
        _probe = None
    process_after = written_by_process()
    marks = probe.marks
    assert len(marks) == steps, len(marks)
    run = LoopRun(
        where=where,
        step_seconds=[after[0] - before[0] for before, after in pairwise(marks)],
        step_bytes=[after[1] - before[1] for before, after in pairwise(marks)],
        step_compactions=[after[2] - before[2] for before, after in pairwise(marks)],
        log_bytes=[mark[3] for mark in marks],
        appends=store.appends,
        replaces=store.replaces,
        run_bytes=store.written,
        process_bytes=None if process_before is None else process_after - process_before,
        store_size=0,
        files=files_under(where),
        files_closed={},
    )
    run.store_size = sum(run.files.values()) if kind.on_disk else memory_size(store)
    if kind.on_disk:
        close(store)
        run.files_closed = files_under(where)
    return run


async def resume_seconds(kind: StoreKind, where: Path, mode: str, steps: int, chars: int) -> float:
    """One resume of the paused instance by a new backend over a new store object."""
    store = kind.open(where)
    out_of_line.ENABLED = MODES[mode]
    backend = DurableBackend(store)
    started = time.perf_counter()
    try:
        await durable_agent_loop(steps, chars, orchestration_backend=backend, instance_id=INSTANCE)
    except PauseForEventException:
        elapsed = time.perf_counter() - started
    else:
        raise AssertionError("the instance resumed without its event")
    if kind.on_disk:
        close(store)
    return elapsed


#: Fresh processes each resuming the paused instance, for measure 5.
FRESH_RESUMES = 5


def fresh_resume_seconds(kind_name: str, where: Path, mode: str, steps: int) -> float:
    """One resume of the paused instance in a new Python process, which has imported this
    module (its durable function) before the timing starts: the store's opening, the load
    and the resume to the instance's wait."""
    done = subprocess.run(
        [sys.executable, __file__, "--fresh-resume", kind_name, str(where), mode, str(steps)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def resume_here(kind_name: str, where: str, mode: str, steps: str) -> None:
    """The child of `fresh_resume_seconds`: prints the seconds its resume took."""
    started = time.perf_counter()
    store = STORES[kind_name].open(Path(where))
    out_of_line.ENABLED = MODES[mode]
    backend = DurableBackend(store)
    try:
        asyncio.run(
            durable_agent_loop(
                int(steps), MESSAGE_CHARS, orchestration_backend=backend, instance_id=INSTANCE
            )
        )
    except PauseForEventException:
        print(time.perf_counter() - started)
    else:
        raise AssertionError("the instance resumed without its event")


def loads_seconds(data: bytes) -> float:
    started = time.perf_counter()
    pickle.loads(data)
    return time.perf_counter() - started


# -- measuring and reporting -------------------------------------------------------------------
@dataclass
class Result:
    large: LoopRun
    step_end: float
    small_step_end: float
    resume: float
    loads: float
    #: Median seconds of a resume in a fresh process (stores on disk only).
    fresh: float | None


def tail_mean(values: list[float]) -> float:
    return statistics.fmean(values[-TAIL:])


async def measure(
    kind: StoreKind, mode: str, root: Path, steps: int, runs: int, resumes: int, final: bytes
) -> Result:
    large_ends, small_ends, large_runs = [], [], []
    for run in range(runs):
        variants = [(MESSAGE_CHARS, large_ends), (SMALL_MESSAGE_CHARS, small_ends)]
        for chars, ends in variants[run % 2 :] + variants[: run % 2]:
            where = Path(tempfile.mkdtemp(prefix=f"{mode}-{chars}-", dir=root))
            loop_run = await run_loop(kind, mode, where, steps, chars)
            ends.append(tail_mean(loop_run.step_seconds))
            if chars == MESSAGE_CHARS:
                large_runs.append(loop_run)
    # Resume the paused instance of the first large run, alternating with the baseline.
    where = large_runs[0].where
    await resume_seconds(kind, where, mode, steps, MESSAGE_CHARS)  # warm up
    loads_seconds(final)
    resume_times, loads_times = [], []
    for repeat in range(resumes):
        if repeat % 2 == 0:
            resume_times.append(await resume_seconds(kind, where, mode, steps, MESSAGE_CHARS))
        loads_times += [loads_seconds(final) for _ in range(LOADS_PER_RESUME)]
        if repeat % 2 == 1:
            resume_times.append(await resume_seconds(kind, where, mode, steps, MESSAGE_CHARS))
    _memory_stores.clear()
    fresh = None
    if kind.on_disk:
        name = next(name for name, known in STORES.items() if known is kind)
        fresh = statistics.median(
            fresh_resume_seconds(name, where, mode, steps) for _ in range(FRESH_RESUMES)
        )
    return Result(
        fresh=fresh,
        large=large_runs[0],
        step_end=statistics.median(large_ends),
        small_step_end=statistics.median(small_ends),
        resume=statistics.median(resume_times),
        loads=statistics.median(loads_times),
    )


def size_text(count: float) -> str:
    if count >= 1 << 20:
        return f"{count / (1 << 20):.2f} MiB"
    if count >= 1 << 10:
        return f"{count / (1 << 10):.1f} KiB"
    return f"{count:.0f} B"


def time_text(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 1 else f"{seconds:.2f} s"


def files_text(files: dict[str, int]) -> str:
    return ", ".join(f"{name} {size_text(size)}" for name, size in files.items() if size) or "none"


def row(name: str, value: str, baseline: str, ratio: float | None, goal: float | None) -> str:
    ratio_text = "" if ratio is None else f"{ratio:.2f}x"
    verdict = "" if goal is None or ratio is None else ("met" if ratio <= goal else "NOT met")
    goal_text = "for information" if goal is None else f"<= {goal:g}x  {verdict}"
    return f"  {name:<44} {value:>12} {baseline:>12} {ratio_text:>9}   {goal_text}"


@dataclass(frozen=True)
class Scenario:
    """What the loop's state weighs, pickled."""

    steps: int
    #: Mean bytes of a message.
    message_size: float
    #: The final conversation, and that of the baseline loop.
    final_size: int
    small_size: int
    #: k -> the conversation with k messages (the state that step k's write saves).
    state_sizes: list[int]


def describe(steps: int) -> Scenario:
    final = final_conversation(steps, MESSAGE_CHARS)
    return Scenario(
        steps=steps,
        message_size=statistics.fmean(len(pickled(message)) for message in final[1:]),
        final_size=len(pickled(final)),
        small_size=len(pickled(final_conversation(steps, SMALL_MESSAGE_CHARS))),
        state_sizes=[len(pickled(final[: k + 1])) for k in range(steps + 1)],
    )


def report(kind: StoreKind, mode: str, result: Result, scenario: Scenario) -> None:
    steps, message_size, final_size = scenario.steps, scenario.message_size, scenario.final_size
    large = result.large
    measured = len(large.step_bytes)
    per_step = statistics.fmean(large.step_bytes)
    tail = statistics.fmean(large.step_bytes[-TAIL:])
    print(f"{kind.label}, mode {mode}")
    print(f"  {'measure':<44} {'value':>12} {'baseline':>12} {'ratio':>9}   goal")
    print(
        row(
            f"1. bytes written per step ({measured} steps)",
            size_text(per_step),
            size_text(message_size),
            per_step / message_size,
            GOALS["bytes"],
        )
    )
    print(
        row(
            f"   the same, last {TAIL} steps",
            size_text(tail),
            size_text(message_size),
            tail / message_size,
            None,
        )
    )
    print(
        row(
            f"2. step time, last {TAIL} steps / {size_text(scenario.small_size)} state",
            time_text(result.step_end),
            time_text(result.small_step_end),
            result.step_end / result.small_step_end,
            GOALS["step"],
        )
    )
    print(
        row(
            f"3. resume at step {steps} / pickle.loads",
            time_text(result.resume),
            time_text(result.loads),
            result.resume / result.loads,
            GOALS["resume"],
        )
    )
    print(
        row(
            "4. store size at end / state pickle",
            size_text(large.store_size),
            size_text(final_size),
            large.store_size / final_size,
            GOALS["size"],
        )
    )
    if result.fresh is not None:
        print(
            f"  5. resume in a fresh process (median of {FRESH_RESUMES}){'':<6}"
            f"{time_text(result.fresh):>12}   goal: well under 100 ms"
        )
    # At call k the log holds what steps 0..k-1 wrote: the state of k messages.
    peak = max(
        range(1, len(large.log_bytes)),
        key=lambda k: large.log_bytes[k] / scenario.state_sizes[k],
    )
    print(
        row(
            f"   largest log / state then ({peak} steps in)",
            size_text(large.log_bytes[peak]),
            size_text(scenario.state_sizes[peak]),
            large.log_bytes[peak] / scenario.state_sizes[peak],
            None,
        )
    )
    compacting = [step for step, count in enumerate(large.step_compactions) if count]
    always = measured
    while always > 0 and large.step_compactions[always - 1]:
        always -= 1
    print(
        f"  the run's writes: {large.appends} appends, {large.replaces} compactions "
        f"(replace_records), {size_text(large.run_bytes)} of records in all;\n"
        f"  {len(compacting)} of the {measured} measured steps compacted"
        + (f", every one from step {always + 1} on" if always < measured else "")
    )
    if large.files:
        print(f"  files, paused: {files_text(large.files)}")
        print(f"  files once the store is closed: {files_text(large.files_closed)}")
    if kind.on_disk and large.process_bytes is not None:
        print(
            f"  write() bytes of the process over the run / record bytes: "
            f"{size_text(large.process_bytes)} / {size_text(large.run_bytes)} = "
            f"{large.process_bytes / large.run_bytes:.2f}x   (for information)"
        )


async def main_async(args: argparse.Namespace, root: Path) -> None:
    steps, runs, resumes = args.steps, args.runs, args.resumes
    scenario = describe(steps)
    final = final_conversation(steps, MESSAGE_CHARS)
    final_pickle = pickled(final)
    print(
        f"Large state: a durable agent loop keeps a `conversation` list live across {steps} "
        "steps;\neach step, `await durable_execute(call_tool, ...)`, returns a message of "
        f"{MESSAGE_CHARS:,} characters\n({scenario.message_size:,.0f} bytes pickled) that "
        f"the loop appends: the conversation ends at {size_text(len(final_pickle))} pickled\n"
        f"({size_text(scenario.small_size)} for the baseline loop, whose messages are "
        f"{SMALL_MESSAGE_CHARS} characters).\nModes: {', '.join(args.modes)}; {runs} run(s) "
        f"of each loop per store, {resumes} resumes; stores under {root}"
    )
    dumps_times, loads_times = [], []
    for _ in range(max(resumes, 5)):
        started = time.perf_counter()
        data = pickled(final)
        middle = time.perf_counter()
        pickle.loads(data)
        dumps_times.append(middle - started)
        loads_times.append(time.perf_counter() - middle)
    dumps, loads = statistics.median(dumps_times), statistics.median(loads_times)
    print(
        f"Reference: bare pickle round trip of the final conversation ({len(final_pickle):,} "
        f"bytes): dumps {time_text(dumps)} + loads {time_text(loads)} = "
        f"{time_text(dumps + loads)}, median of {len(dumps_times)}"
    )
    for mode in args.modes:
        for name in args.stores:
            kind = STORES[name]
            result = await measure(kind, mode, root, steps, runs, resumes, final_pickle)
            print()
            report(kind, mode, result, scenario)


def main() -> None:
    if sys.argv[1:2] == ["--fresh-resume"]:
        resume_here(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=sorted(MODES),
        default=sorted(MODES),
        help="snapshot modes to measure: full (every snapshot whole) and incremental",
    )
    parser.add_argument(
        "--stores", nargs="+", choices=list(STORES), default=list(STORES), help="stores to measure"
    )
    parser.add_argument("--steps", type=int, default=STEPS, help="steps of the loop")
    parser.add_argument("--runs", type=int, default=5, help="runs of each loop per store")
    parser.add_argument("--resumes", type=int, default=25, help="resumes measured per store")
    parser.add_argument("--quick", action="store_true", help="one run, 9 resumes")
    parser.add_argument("--dir", default=None, help="where the temporary stores go")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.resumes = 1, 9
    args.runs, args.resumes = max(args.runs, 1), max(args.resumes, 1)
    if args.steps <= TAIL:
        parser.error(f"--steps must be more than {TAIL}")
    root = Path(tempfile.mkdtemp(prefix="durable-bench-", dir=args.dir))
    try:
        asyncio.run(main_async(args, root))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
