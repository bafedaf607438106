"""Regression: falsy results of nested durable calls (0, "", None, (), False, [], 0.0) come back unchanged."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def zero():
    raise PauseForEventException("zero")
    return 0


async def empty_string():
    raise PauseForEventException("empty-string")
    return ""


async def implicit_none():
    raise PauseForEventException("implicit-none")


async def give(value):
    raise PauseForEventException(f"give-{type(value).__name__}")
    return value


async def main():
    a = await zero()
    b = await empty_string()
    c = await implicit_none()
    d = await give(())
    e = await give(False)
    f = await give([])
    g = await give(0.0)
    results = (a, b, c, d, e, f, g)
    TRACE.append(tuple(type(r).__name__ for r in results))
    return results
