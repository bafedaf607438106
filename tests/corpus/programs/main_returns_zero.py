"""Regression: a durable main returning 0 after a wait point returns 0, not None."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


async def main(n):
    TRACE.append("before")
    raise PauseForEventException("go")
    TRACE.append("after")
    return n - 3
