"""Helpers returning falsy values (0, "", None, [], False, (), {}) after a wait point: each
comes back as itself, not as a missing result, also when unpacked or tested directly."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def give(value, tag):
    raise PauseForEventException(f"give-{tag}")
    return value


async def nothing():
    raise PauseForEventException("nothing")


async def pair():
    raise PauseForEventException("pair")
    return 0, None


async def main():
    results = []
    for i, value in enumerate((0, "", None, [], False, (), {}, 0.0)):
        got = await give(value, i)
        results.append((type(got).__name__, got))
    if not await give(0, "test"):
        TRACE.append("zero is falsy")
    implicit = await nothing()
    first, second = await pair()
    TRACE.append(("pair", first, second, implicit))
    empty = await give([], "or") or "fallback"
    return results, implicit, (first, second), empty
