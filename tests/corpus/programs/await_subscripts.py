"""Awaits in subscripts and slices: container and index evaluate in order around the wait points."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    table = {"k": [10, 20, 30, 40], "j": "text"}
    a = table[await f("k")]
    b = table["k"][await f(1)]
    c = (await f([7, 8, 9]))[-1]
    d = table["k"][await f(1) : await f(3)]
    e = table[await f("j")][:: await f(2)]
    table["k"][0] = await f("new")
    return a, b, c, d, e, table
