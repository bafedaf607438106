"""and/or with awaits short-circuit: False and await f() never calls f; the right side runs only when needed."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    a = False and await f("never-1")
    b = True or await f("never-2")
    c = 1 and await f("c")
    d = 0 or await f("d")
    e = await f(0) and await f("never-3")
    g = await f("") or await f(None) or await f("last")
    h = (await f([]) or "default") and await f("h")
    if await f(True) and not await f(0):
        TRACE.append("if-and")
    return a, b, c, d, e, g, h
