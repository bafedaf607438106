"""Cost of an await of a plain (third-party) coroutine from compiled code, and of a helper call.

Run: python bench/plain_await.py [--runs N]

1. A durable function awaits a coroutine that is not the user's code (its function is given
   to `durable.exclude_helpers`, as third-party code is by the helper rule) N (100,000) times
   in a loop; the same loop as a plain `async def`. Alternating, median of the runs; prints
   the extra cost per await, (compiled - plain) / N (target <= ~1 us).
2. For information: the same loop awaiting an undecorated helper of the user's code, which
   runs as a nested frame of the instance (compiled once, then one frame per call).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable import (  # noqa: E402
    DurableBackend,
    InMemoryStateStore,
    exclude_helpers,
    make_durable,
)

AWAITS = 100_000


async def third_party(i):
    return i + 1


exclude_helpers(third_party)


async def users_helper(i):
    return i + 1


async def awaits_third_party(n):
    total = 0
    for i in range(n):
        total += await third_party(i)
    return total


async def awaits_helper(n):
    total = 0
    for i in range(n):
        total += await users_helper(i)
    return total


# The same functions run plainly and compiled: make_durable leaves the original as it is.
durable_third_party = make_durable(awaits_third_party)
durable_helper = make_durable(awaits_helper)


def timed(coroutine_function, *args, **kwargs) -> float:
    started = time.perf_counter()
    asyncio.run(coroutine_function(*args, **kwargs))
    return time.perf_counter() - started


def compare(plain, durable, runs: int, n: int) -> tuple[float, float]:
    backend = DurableBackend(InMemoryStateStore())
    plain_times, durable_times = [], []
    for run in range(runs):
        plain_times.append(timed(plain, n))
        durable_times.append(
            timed(durable, n, orchestration_backend=backend, instance_id=f"{durable.key}-{run}")
        )
    return statistics.median(plain_times), statistics.median(durable_times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each variant (>= 5)")
    args = parser.parse_args()
    runs = max(args.runs, 5)
    plain, durable = compare(awaits_third_party, durable_third_party, runs, AWAITS)
    print(f"Await of a plain coroutine, {AWAITS:,} awaits, median of {runs} runs each")
    print(f"  plain Python  {plain * 1e3:8.2f} ms")
    print(f"  compiled      {durable * 1e3:8.2f} ms")
    per_await = (durable - plain) / AWAITS * 1e6
    print(f"  extra per await {per_await:6.2f} us   (target <= ~1 us)")
    helpers = AWAITS // 10
    plain, durable = compare(awaits_helper, durable_helper, runs, helpers)
    print(f"Await of an undecorated helper (a nested frame), {helpers:,} calls")
    print(f"  plain Python  {plain * 1e3:8.2f} ms")
    print(f"  compiled      {durable * 1e3:8.2f} ms")
    print(f"  per call      {(durable - plain) / helpers * 1e6:6.2f} us more than plain Python")


if __name__ == "__main__":
    main()
