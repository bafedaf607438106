"""How long a process takes to start using durable, against a bare interpreter's start.

Run: python bench/startup.py [--runs N]

Each measure is the median wall time of N (15) fresh processes, alternated with the baseline
(`python -c pass`) in the same run:

- `import durable`;
- `durable list` and `durable status` over a SQLite store of one instance (what an operator
  or a script runs), which read stored state and compile nothing;
- importing a module that defines one durable function (it compiles at import), which a
  worker or a program does.

Prints each time and its excess over the baseline.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOW = """
from durable import durable_execute, make_durable


def charge(amount):
    return amount


@make_durable
async def order(amount):
    receipt = await durable_execute(charge, amount)
    return receipt
"""


def wall(command: list[str], env: dict[str, str], cwd: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "flows.py").write_text(FLOW)
        store = f"sqlite:///{directory}/store.db"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([directory, str(ROOT)])}
        env.pop("DURABLE_STORE", None)
        sys.path.insert(0, directory)
        import flows

        from durable import DurableBackend, store_from_url

        backend = DurableBackend(store_from_url(store))
        asyncio.run(flows.order.using(backend, instance_id="order-1")(5))
        backend.store.close()

        python = sys.executable
        measures = {
            "import durable": [python, "-c", "import durable"],
            "durable list": [python, "-m", "durable", "list", "--store", store],
            "durable status": [python, "-m", "durable", "status", "--store", store, "order-1"],
            "import a module of one durable function": [python, "-c", "import flows"],
        }
        baseline: list[float] = []
        times: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(runs):
            for name, command in measures.items():
                baseline.append(wall([python, "-c", "pass"], env, directory))
                times[name].append(wall(command, env, directory))
    bare = statistics.median(baseline)
    print(f"Process start, median of {runs} (bare interpreter: {bare * 1000:.0f} ms)")
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"  {name:40s} {median * 1000:6.0f} ms   +{(median - bare) * 1000:5.0f} ms")


if __name__ == "__main__":
    main()
