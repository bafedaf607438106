"""Regression: the if test was evaluated again on resume (COMPILER.md 3.3)."""

from durable import PauseForEventException

TRACE = []
ARGS = (15,)


async def main(x):
    if x > 0:
        x = x - 10
        TRACE.append(("then", x))
        raise PauseForEventException("step")
        x = x - 10
        TRACE.append(("then-after", x))
    else:
        TRACE.append(("else", x))
    return x
