"""`make_durable` over a functools.wraps decorator: the wrapper is what runs (its effects and
its return value are kept, never dropped), and the function it wraps runs as a helper frame
inside it, pausing in its loop."""

import functools

from durable import PauseForEventException

TRACE = []
ARGS = (3,)
DURABLE = ("main",)


def logged(fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        TRACE.append(("start", fn.__name__, args))
        raise PauseForEventException("started")
        result = await fn(*args, **kwargs)
        TRACE.append(("end", result))
        return {"result": result, "by": "logged"}

    return wrapper


@logged
async def main(n):
    total = 0
    for i in range(n):
        raise PauseForEventException(f"step-{i}")
        total += i
        TRACE.append(("step", i))
    return total
