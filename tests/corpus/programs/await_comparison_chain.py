"""Comparison chains with awaits: each operand evaluates once, in order, and the chain short-circuits."""

from durable import PauseForEventException

TRACE = []
ARGS = (5,)


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main(x):
    a = 1 < await f(3) < 10
    b = 10 < x < await f("never")
    c = 1 < x < await f(7) <= await f(7) != 8
    d = await f(2) > x > await f("never-2")
    e = await f(5) == await f(5)
    g = x in await f([4, 5]) not in [False]
    return a, b, c, d, e, g
