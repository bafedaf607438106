"""Cost of being durable: a CPU-bound loop plain vs compiled, and one suspend + resume.

Run: python bench/compiled_overhead.py [--runs N]

1. The same `async def` (>= 200,000 iterations of arithmetic and list work, no checkpoint
   inside) runs as plain Python and as the compiled durable function, alternating, N runs
   each; prints both medians and their ratio (target <= 1.05x). The same for a loop that
   raises and catches often, and for comprehension-heavy code.
2. A frame with 20 live locals is suspended at a wait point (snapshot pickled and written to
   an in-memory store) and resumed in a new backend; prints the median cost of one
   suspend + resume, next to a baseline of pickling the same 20 values (target < 200 us).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import DurableBackend, InMemoryStateStore, PauseForEventException, make_durable, sleep  # noqa: E402

ITERATIONS = 200_000


async def crunch(n):
    total = 0
    window = []
    for i in range(n):
        total += (i * i) % 7
        if i % 3 == 0:
            window.append(total)
            if len(window) > 32:
                window.pop(0)
    return total + sum(window)


durable_crunch = make_durable(crunch)


class Odd(Exception):
    pass


async def exceptions(n):
    """A hot loop that raises and catches often (every third iteration), after a checkpoint
    (so the function is compiled, not run as written)."""
    await sleep(0)
    caught = 0
    for i in range(n):
        try:
            if i % 3 == 0:
                raise Odd(i)
            caught += 1
        except Odd as error:
            caught += error.args[0] % 5
        finally:
            caught += 1
    return caught


async def comprehensions(n):
    """Comprehension-heavy code: list, dict and set comprehensions and a generator, after a
    checkpoint."""
    await sleep(0)
    total = 0
    for i in range(n // 50):
        squares = [x * x for x in range(50) if x % 3]
        index = {x: x + i for x in squares}
        seen = {x % 7 for x in index}
        total += sum(v for v in index.values() if v % 2) + len(seen)
    return total


durable_exceptions = make_durable(exceptions)
durable_comprehensions = make_durable(comprehensions)


async def twenty_locals(seed):
    a0, a1, a2, a3, a4 = seed, seed + 1, seed + 2, seed + 3, seed + 4
    b0, b1, b2, b3, b4 = "x" * 10, "y" * 20, [1, 2, 3], {"k": 1}, (1, 2)
    c0, c1, c2, c3, c4 = 1.5, 2.5, None, True, b"bytes"
    d0, d1, d2, d3, d4 = [seed] * 5, {"a": [1]}, {1, 2}, "z", 7
    raise PauseForEventException("go")
    return (a0, a1, a2, a3, a4, b0, b1, b2, b3, b4, c0, c1, c2, c3, c4, d0, d1, d2, d3, d4)


durable_twenty = make_durable(twenty_locals)


def time_call(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def loop_overhead(runs: int, plain_fn=crunch, durable_fn=durable_crunch) -> tuple[float, float]:
    backend = DurableBackend(InMemoryStateStore())
    plain_times, compiled_times = [], []
    expected = asyncio.run(plain_fn(ITERATIONS))
    for run in range(runs):

        def plain():
            assert asyncio.run(plain_fn(ITERATIONS)) == expected

        def compiled(run=run):
            result = asyncio.run(
                durable_fn(ITERATIONS, orchestration_backend=backend, instance_id=f"loop-{run}")
            )
            assert result == expected

        plain_times.append(time_call(plain))
        compiled_times.append(time_call(compiled))
    return statistics.median(plain_times), statistics.median(compiled_times)


async def suspend_resume_cost(rounds: int) -> tuple[float, float]:
    store = InMemoryStateStore()
    timings = []
    for round_number in range(rounds):
        instance = f"frame-{round_number}"
        started = time.perf_counter()
        try:
            await durable_twenty(
                1, orchestration_backend=DurableBackend(store), instance_id=instance
            )
        except PauseForEventException:
            pass
        resumed_backend = DurableBackend(store)
        resumed_backend.publish_event(instance, "go")
        await durable_twenty(1, orchestration_backend=resumed_backend, instance_id=instance)
        timings.append(time.perf_counter() - started)
    values = (
        1,
        2,
        3,
        4,
        5,
        "x" * 10,
        "y" * 20,
        [1, 2, 3],
        {"k": 1},
        (1, 2),
        1.5,
        2.5,
        None,
        True,
        b"bytes",
        [1] * 5,
        {"a": [1]},
        {1, 2},
        "z",
        7,
    )
    pickle_times = []
    for _ in range(rounds):
        started = time.perf_counter()
        pickle.loads(pickle.dumps(values))
        pickle_times.append(time.perf_counter() - started)
    return statistics.median(timings), statistics.median(pickle_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each variant (>= 7)")
    args = parser.parse_args()
    plain, compiled = loop_overhead(max(args.runs, 7))
    print(f"CPU-bound loop, {ITERATIONS:,} iterations, median of {max(args.runs, 7)} runs each")
    print(f"  plain     {plain * 1e3:8.2f} ms")
    print(f"  compiled  {compiled * 1e3:8.2f} ms")
    print(f"  ratio     {compiled / plain:8.3f}x   (target <= 1.05x)")
    for label, plain_fn, durable_fn in (
        ("Exception-heavy loop (a raise and catch every third iteration)", exceptions,
         durable_exceptions),
        ("Comprehension-heavy code (list, dict, set comprehensions, a generator)",
         comprehensions, durable_comprehensions),
    ):  # fmt: skip
        plain, compiled = loop_overhead(max(args.runs, 7), plain_fn, durable_fn)
        print(f"{label}, {ITERATIONS:,} iterations")
        print(f"  plain {plain * 1e3:8.2f} ms, compiled {compiled * 1e3:8.2f} ms, "
              f"ratio {compiled / plain:6.3f}x   (target <= 1.05x)")  # fmt: skip
    resume, baseline = asyncio.run(suspend_resume_cost(300))
    print("Suspend + resume of a frame with 20 live locals (in-memory store), median of 300")
    print(f"  suspend + resume      {resume * 1e6:8.1f} us   (target < 200 us)")
    print(f"  baseline: pickle round trip of the 20 values {baseline * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
