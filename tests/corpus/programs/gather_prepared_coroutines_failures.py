"""asyncio.gather of helper coroutines made before a pause; a gather whose last branch fails
after its pause, caught in a handler that pauses; return_exceptions=True over a mix."""

import asyncio

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def work(n):
    raise PauseForEventException(f"work-{n}")
    TRACE.append(("work", n))
    return n


async def fails(n):
    raise PauseForEventException(f"fails-{n}")
    raise ValueError(f"bad {n}")


async def quick(n):
    TRACE.append(("quick", n))
    return n


async def main():
    coros = [work(i) for i in range(3)]
    raise PauseForEventException("made")
    got = await asyncio.gather(*coros)
    try:
        await asyncio.gather(quick(1), fails(2))
    except ValueError as error:
        raise PauseForEventException("caught")
        TRACE.append(("caught", str(error)))
    mixed = await asyncio.gather(quick(3), fails(4), work(5), return_exceptions=True)
    return got, [repr(m) for m in mixed]
