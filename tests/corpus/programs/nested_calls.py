"""Regression: the caller stopped after a nested call finished (COMPILER.md 3.11)."""

from durable import PauseForEventException

TRACE = []
ARGS = (2,)


async def child(x):
    TRACE.append(("child-start", x))
    raise PauseForEventException(f"child-{x}")
    TRACE.append(("child-end", x))
    return x * 10


async def main(n):
    results = []
    for i in range(n):
        value = await child(i)
        results.append(value)
        TRACE.append(("parent", i, value))
    TRACE.append("parent-done")
    return results
