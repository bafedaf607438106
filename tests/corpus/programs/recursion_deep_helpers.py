"""A helper recursing 60 frames deep pauses at the bottom and on the way back up at every
15th level, mutual recursion between two helpers pauses too; each frame keeps its own
locals, and a 300-element tuple built on the way back comes out whole."""

from durable import PauseForEventException

TRACE = []
ARGS = (60,)
DURABLE = ("main",)


async def descend(depth, path):
    here = path + (depth,)
    if depth == 0:
        raise PauseForEventException("bottom")
        return here
    below = await descend(depth - 1, here)
    if depth % 15 == 0:
        raise PauseForEventException(f"up-{depth}")
        TRACE.append(("up", depth, len(here), below[-1]))
    return below


async def is_even(n):
    if n == 0:
        raise PauseForEventException("even-base")
        return True
    return await is_odd(n - 1)


async def is_odd(n):
    if n == 0:
        return False
    result = await is_even(n - 1)
    return result


async def main(depth):
    path = await descend(depth, ())
    parity = (await is_even(7), await is_odd(7))
    wide = tuple((i, str(i), [i]) for i in range(300))
    raise PauseForEventException("wide")
    return len(path), path[:3], path[-3:], parity, wide[::97], len(wide)
