"""Instructions per in-memory durable step, counted by valgrind's callgrind (load-independent).

Run: python bench/step_instructions.py [--steps N]

Runs the in-memory loop of `bench/step_overhead.py` (`await durable_execute(work, i)` over
`DurableBackend(InMemoryStateStore())`) under `valgrind --tool=callgrind` twice, with 0 and
with N (2,000) steps after the same warm-up, and prints the difference over N: the
instructions one step costs, compactions included (one every 256 steps). The same for a
plain awaited call, as the baseline. Wall-clock figures are `bench/step_overhead.py`'s; this
one gives the same answer on a busy machine, so it compares commits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def run_loop(kind: str, steps: int) -> None:
    """The child: a warm-up instance, then `steps` steps of `kind` (durable or plain)."""
    from step_overhead import durable_steps, plain_steps

    from durable import DurableBackend, InMemoryStateStore

    async def main() -> None:
        warm = DurableBackend(InMemoryStateStore())
        await durable_steps(10, orchestration_backend=warm, instance_id="warm")
        if kind == "durable":
            backend = DurableBackend(InMemoryStateStore())
            await durable_steps(steps, orchestration_backend=backend, instance_id="counted")
        else:
            await plain_steps(steps)

    asyncio.run(main())


def instructions(kind: str, steps: int) -> int:
    """Instructions callgrind counts for a whole child process running `steps` steps."""
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [
                "valgrind", "--tool=callgrind",
                f"--callgrind-out-file={directory}/callgrind.out",
                sys.executable, __file__, "--child", kind, str(steps),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
        )  # fmt: skip
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"callgrind printed no total:\n{done.stderr}")
    return int(found.group(1))


def per_step(kind: str, steps: int) -> float:
    return (instructions(kind, steps) - instructions(kind, 0)) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        run_loop(options.child[0], int(options.child[1]))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    durable = per_step("durable", options.steps)
    plain = per_step("plain", options.steps)
    print(f"Instructions per step (callgrind, {options.steps} steps minus none)")
    print(f"  plain awaited call   {plain:10,.0f}")
    print(f"  durable_execute      {durable:10,.0f}   ({durable / plain:.0f}x the plain call)")


if __name__ == "__main__":
    main()
