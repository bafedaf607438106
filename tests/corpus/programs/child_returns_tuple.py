"""Regression: tuple results of nested durable calls are not spread: x = await pair() is (1, 2)."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def pair():
    raise PauseForEventException("pair")
    return (1, 2)


async def one():
    raise PauseForEventException("one")
    return (5,)


async def nested():
    raise PauseForEventException("nested")
    return ((1, 2), 3)


async def forward():
    return await pair()


async def main():
    x = await pair()
    TRACE.append((x, type(x).__name__, len(x)))
    a, b = await pair()
    TRACE.append((a, b))
    y = await one()
    z = await nested()
    w = await forward()
    TRACE.append((y, z, w))
    return x, y, z, w
