"""Regression: statements after a for loop were skipped (COMPILER.md 3.2)."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    total = 0
    for x in [1, 2, 3]:
        total += x
        TRACE.append(("item", x, total))
        raise PauseForEventException("next")
    done = "yes"
    TRACE.append(done)
    return total, done
