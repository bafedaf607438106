"""Helper coroutines made ahead and kept in a dict and a list, then awaited one by one in a
loop (`for c in coros: await c`): a pause inside one of them saves the container, which
holds that coroutine (consumed by its frame) and those still to be awaited."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def work(n, *, label="w"):
    raise PauseForEventException(f"work-{n}")
    TRACE.append(("work", n, label))
    return n * 10


async def factory(n):
    coro = work(n, label="made")
    raise PauseForEventException(f"factory-{n}")
    return coro


async def main():
    got = await (await factory(1))
    pending = {k: work(k) for k in (2, 3)}
    raise PauseForEventException("pending")
    results = {}
    for k in sorted(pending):
        results[k] = await pending[k]
    later = [work(4), work(5, label="five")]
    raise PauseForEventException("later")
    a, b = [await c for c in later]
    try:
        await later[0]
    except RuntimeError as error:
        TRACE.append(("again", str(error)))
    return got, results, a, b
