"""Regression: the original package ran a while body only once (COMPILER.md 3.1)."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    i = 0
    while i < 3:
        i += 1
        TRACE.append(("tick", i))
        raise PauseForEventException(f"tick-{i}")
    TRACE.append("done")
    return i
