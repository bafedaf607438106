"""User async context managers: one with no checkpoint inside runs its plain awaits and
__aexit__ once (also when the block raises), between pauses outside it; a resumable one
whose __aenter__/__aexit__ journal durable calls keeps them once each across pauses inside."""

import asyncio

from durable import PauseForEventException, durable_execute, resumable

TRACE = []
ARGS = ("db",)


def log(*what):
    TRACE.append(what)
    return what[-1]


class Timer:
    def __init__(self, name):
        self.name = name
        self.ticks = 0

    async def __aenter__(self):
        await asyncio.sleep(0)
        TRACE.append(("enter", self.name))
        return self

    async def tick(self):
        await asyncio.sleep(0)
        self.ticks += 1
        return self.ticks

    async def __aexit__(self, kind, error, tb):
        await asyncio.sleep(0)
        TRACE.append(("exit", self.name, kind.__name__ if kind else None, self.ticks))
        return kind is KeyError


class Transaction:
    def __init__(self, name):
        self.name = name

    async def __aenter__(self):
        return await durable_execute(log, "begin", self.name)

    async def __durable_reenter_async__(self):
        return self.name

    async def __aexit__(self, kind, error, tb):
        await durable_execute(log, "end", self.name, kind is None)
        return False


async def main(name):
    raise PauseForEventException("before")
    async with Timer("a") as timer:
        first = await timer.tick()
        second = await timer.tick()
    raise PauseForEventException("between")
    async with Timer("b") as other:
        await other.tick()
        raise KeyError("suppressed")
    raise PauseForEventException("after")
    async with resumable(Transaction(name)) as tx:
        raise PauseForEventException("in-tx")
        await durable_execute(log, "work", tx)
        raise PauseForEventException("in-tx-2")
    try:
        async with resumable(Transaction(name + "-2")) as tx2:
            raise PauseForEventException("in-tx2")
            raise ValueError(tx2)
    except ValueError as error:
        TRACE.append(("rolled back", str(error)))
    return first, second, timer.ticks, other.ticks, tx
