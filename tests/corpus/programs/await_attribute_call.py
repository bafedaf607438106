"""Regression (COMPILER.md 3.5): `await obj.method(...)` reaching a durable function is a checkpoint."""

from durable import PauseForEventException

TRACE = []
ARGS = (5,)


class _Ops:
    def __init__(self, run):
        self.run = run


async def step(x):
    TRACE.append(("step", x))
    raise PauseForEventException(f"step-{x}")
    return x + 1


async def main(x):
    ops = _Ops(step)
    first = await ops.run(x)
    second = 1 + await ops.run(first)
    TRACE.append(("total", first, second))
    return first, second
