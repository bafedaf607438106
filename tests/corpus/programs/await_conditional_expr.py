"""Conditional expressions with awaits: only the chosen branch is awaited; the test may await too."""

from durable import PauseForEventException

TRACE = []
ARGS = (True,)


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main(flag):
    a = await f("yes") if flag else await f("no-1")
    b = await f("no-2") if not flag else await f("else")
    c = "then" if await f(0) else "otherwise"
    d = (await f(1) if await f(flag) else 2) + 10
    flag = False
    e = await f("late") if flag else "plain"
    return a, b, c, d, e
