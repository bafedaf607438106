"""Compile time of a 300-line durable function: cold, and again from the compile cache.

Run: python bench/compile_time.py [--runs N]

The function mixes the constructs the compiler lowers (branches, loops, try/finally, awaits
inside expressions, wait points). "Cold" clears the in-process compile cache first; "cached"
compiles the same function again (the cache is keyed by the function's source and place, so
any change to the code misses it). Baseline: CPython's own compile() of the same source.
Targets: cold < 150 ms, cached < 2 ms. Then a 1,500-line function of the same blocks: its
cold compile against the 300-line one's (linear growth: about 5x).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from durable.transform import pipeline  # noqa: E402
from durable.transform.pipeline import compile_function  # noqa: E402

BLOCK = """\
    if total % {i} == 0:
        total += await step(total, {i})
    else:
        total -= 1
    for item in range({i} % 5):
        if item == 3:
            break
        total += item * {i}
    try:
        value = await step(total, item) if total > {i} else total
    except ValueError as error:
        total = len(str(error))
    finally:
        seen.append(total)
    while total > 10_000 and await step(total, 0) > 0:
        total //= 2
    raise PauseForEventException("tick-{i}")
"""


def big_function_source(lines: int = 300) -> str:
    header = "from durable import PauseForEventException\n\n\nasync def step(a, b):\n    return a + b\n\n\n"
    body = "async def big(n):\n    total = n\n    seen = []\n"
    i = 1
    while body.count("\n") < lines - 1:
        body += BLOCK.format(i=i)
        i += 1
    return header + body + "    return total, seen\n"


def load(source: str):
    directory = Path(tempfile.mkdtemp())
    path = directory / "big_flow.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("big_flow", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.big


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    source = big_function_source()
    function = load(source)
    lines = source.count("\n") - source.index("async def big") // 1 and len(
        source[source.index("async def big") :].splitlines()
    )
    cold, cached, baseline = [], [], []
    for _ in range(args.runs):
        pipeline._cache.clear()
        started = time.perf_counter()
        compile_function(function)
        cold.append(time.perf_counter() - started)
        started = time.perf_counter()
        compile_function(function)
        cached.append(time.perf_counter() - started)
        started = time.perf_counter()
        compile(source, "big_flow.py", "exec")
        baseline.append(time.perf_counter() - started)
    code = compile_function(function)
    print(
        f"function of {lines} lines, {len(code.resume_points)} checkpoints; median of {args.runs}"
    )
    print(f"  cold compile     {statistics.median(cold) * 1e3:8.2f} ms   (target < 150 ms)")
    print(f"  cached compile   {statistics.median(cached) * 1e3:8.3f} ms   (target < 2 ms)")
    print(
        f"  baseline: CPython compile() of the same source {statistics.median(baseline) * 1e3:.2f} ms"
    )
    # Linear in the function's size: five times the lines, about five times the time.
    big = load(big_function_source(1500))
    big_cold = []
    for _ in range(max(3, args.runs // 3)):
        pipeline._cache.clear()
        started = time.perf_counter()
        compile_function(big)
        big_cold.append(time.perf_counter() - started)
    ratio = statistics.median(big_cold) / statistics.median(cold)
    print(f"function of 1,500 lines: cold compile {statistics.median(big_cold) * 1e3:8.1f} ms")
    print(f"  1,500 lines / {lines} lines {ratio:5.1f}x   (linear: ~{1500 / lines:.0f}x)")


if __name__ == "__main__":
    main()
