"""Positional-only parameters (with defaults) in main and in a child called positionally and by keyword."""

from durable import PauseForEventException

TRACE = []
ARGS = (7,)


async def pair(a, b=2, /, c=3, *, d=4):
    raise PauseForEventException(f"pair-{a}")
    TRACE.append(("pair", a, b, c, d))
    return a, b, c, d


async def main(x, y=8, /):
    raise PauseForEventException("main")
    first = await pair(x)
    second = await pair(x, y, c=9)
    third = await pair(1, 2, 3, d=5)
    return x, y, first, second, third
