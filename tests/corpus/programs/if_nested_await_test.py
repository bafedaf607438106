"""Nested ifs whose tests await a durable call, with wait points at both levels; no test re-runs on resume."""

from durable import PauseForEventException

TRACE = []
ARGS = (4,)


async def check(label, value):
    TRACE.append(("check", label, value))
    raise PauseForEventException(f"check-{label}")
    return value > 2


async def main(n):
    if await check("outer", n):
        n = 0
        raise PauseForEventException("outer-then")
        if await check("inner", n + 10):
            n = 100
            raise PauseForEventException("inner-then")
            TRACE.append(("inner-then", n))
        else:
            TRACE.append(("inner-else", n))
        TRACE.append(("outer-then", n))
    elif n == 0:
        TRACE.append("elif")
    else:
        raise PauseForEventException("outer-else")
        TRACE.append("outer-else")
    return n
