"""return await f() at several depths, including a tuple of awaits and a conditional return."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


async def leaf(value):
    raise PauseForEventException(f"leaf-{value}")
    return value * 2


async def middle(value):
    if value > 2:
        return await leaf(value)
    return await leaf(-value)


async def main(n):
    TRACE.append("start")
    first = await middle(n)
    TRACE.append(("first", first))
    return await middle(first), await leaf(0)
