"""Pauses in the body, handler, else and finally of nested try statements across three helper
frames: an exception passes through a finally that pauses in each frame, a `return` in a
finally swallows an exception, a `continue` in a finally cancels a `break`."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = (3,)
DURABLE = ("main",)


def note(*what):
    TRACE.append(what)
    return len(TRACE)


async def deepest(n):
    try:
        await durable_execute(note, "deepest body", n)
        if n % 2:
            raise ValueError(f"odd {n}")
        return n
    finally:
        raise PauseForEventException(f"deepest-finally-{n}")
        await durable_execute(note, "deepest finally", n)


async def middle(n):
    try:
        value = await deepest(n)
    except ValueError as error:
        await durable_execute(note, "middle handler", str(error))
        raise
    else:
        raise PauseForEventException(f"middle-else-{n}")
        value += 100
    finally:
        await durable_execute(note, "middle finally", n)
    return value


async def swallow(n):
    try:
        return await middle(n)
    finally:
        raise PauseForEventException(f"swallow-{n}")
        if n == 1:
            return "swallowed"  # noqa: B012 (swallows on purpose)


async def main(count):
    results = []
    for n in range(count):
        try:
            results.append(await swallow(n))
        except ValueError as error:
            raise PauseForEventException(f"main-handler-{n}")
            results.append(("error", str(error)))
    attempts = 0
    while attempts < 5:
        attempts += 1
        try:
            if attempts < 3:
                break
        finally:
            raise PauseForEventException(f"loop-finally-{attempts}")
            if attempts < 3:
                continue  # noqa: B012 (cancels the break on purpose)
    note("attempts", attempts)
    return results
