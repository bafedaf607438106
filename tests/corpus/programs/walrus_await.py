"""Walrus with awaits: (y := await f()) binds y, also inside an if test and a while test."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    total = (y := await f(3)) + y
    if (n := await f(5)) > 4:
        TRACE.append(("big", n))
    items = []
    i = 0
    while (item := await f(i)) < 2:
        items.append(item)
        i += 1
    return total, y, n, items, item
