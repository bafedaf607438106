"""A comprehension with awaits inside a larger expression keeps Python's evaluation order."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


def _first():
    TRACE.append("first")
    return 100


async def step(i):
    raise PauseForEventException(f"step-{i}")
    TRACE.append(("step", i))
    return i


async def main(n):
    total = _first() + sum([await step(i) for i in range(n)]) + len(TRACE)
    return total, max([await step(i) * 2 for i in range(n)] or [0])
