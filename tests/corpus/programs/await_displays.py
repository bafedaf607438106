"""Awaits in list, tuple, set and dict displays (with starred parts): elements evaluate left to right."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


def side(value):
    TRACE.append(("side", value))
    return value


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    lst = [side(1), await f(2), side(3)]
    tup = (side("t"), await f("u"))
    st = {await f(5), side(6), 5}
    base = {"a": 1}
    d = {side("k1"): await f("v1"), await f("k2"): side("v2"), **base}
    starred = [*lst, *(await f((8, 9))), side(10)]
    merged = {**base, "b": await f("b")}
    return lst, tup, sorted(st), d, starred, merged
