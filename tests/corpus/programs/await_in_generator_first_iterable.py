"""An await in a generator expression's first iterable (evaluated in the function, as Python
does), inside a call, with a helper coroutine made before it and awaited after (so an unstarted
coroutine is live across the checkpoint); and a `with resumable(...)` whose one checkpoint is
such an await."""

import asyncio

from durable import PauseForEventException, resumable

TRACE = []
ARGS = (4,)
DURABLE = ("main",)


class Session:
    def __enter__(self):
        TRACE.append("open")
        return self

    def __durable_reenter__(self):
        return self

    def __exit__(self, *exception):
        TRACE.append("close")
        return False


async def scores(n):
    TRACE.append(("scores", n))
    raise PauseForEventException(f"scores-{n}")
    return [n * i for i in range(n)]


async def bonus(points):
    raise PauseForEventException("bonus")
    TRACE.append(("bonus", points))
    return points * 10


async def main(n):
    total = sum(s for s in await scores(n) if s % 2 == 0)
    later = bonus(total)  # made now, awaited after the next checkpoint
    raise PauseForEventException("between")
    extra = await later
    with resumable(Session()):  # its one checkpoint is in a generator's first iterable
        both = sum(x for x in await asyncio.gather(scores(2), bonus(1)))
    return total, extra, max(v for v in await scores(3)), both
