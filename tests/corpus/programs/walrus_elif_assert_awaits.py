"""`while (x := await helper()) is not None`, awaits in elif tests and in a walrus inside
one, `assert await ...`, and a comprehension of awaits that raises partway."""

from durable import PauseForEventException

TRACE = []
ARGS = ([3, 1, 4, 1, 5],)
DURABLE = ("main",)


async def pop(queue):
    raise PauseForEventException(f"pop-{len(queue)}")
    return queue.pop(0) if queue else None


async def is_big(n):
    raise PauseForEventException(f"big-{n}")
    return n > 3


async def main(items):
    queue = list(items)
    seen = []
    while (item := await pop(queue)) is not None:
        if item == 1:
            seen.append("one")
        elif await is_big(item):
            seen.append(("big", item))
        elif item % 2 and (w := await pop([f"w{item}"])):
            seen.append(("odd", item, w))
        else:
            seen.append(item)
    assert await is_big(10), "ten is big"
    try:
        values = [await is_big(n) or 1 / 0 for n in (5, 0, 7)]
    except ZeroDivisionError as error:
        values = str(error)
    TRACE.append((seen, values, item))
    return seen
