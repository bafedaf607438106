"""Parameters with defaults (including a read-only mutable default) and keyword-only ones, in main and a child."""

from durable import PauseForEventException

TRACE = []
ARGS = (1,)


async def scale(value, factor=2, *, offset=0, opts={"round": False}):  # noqa: B006
    raise PauseForEventException(f"scale-{value}")
    result = value * factor + offset
    return round(result) if opts["round"] else result


async def main(a, b=10, *, c=None, d="dee"):
    TRACE.append(("args", a, b, c, d))
    raise PauseForEventException("main")
    x = await scale(a)
    y = await scale(a, 3)
    z = await scale(b, offset=5)
    w = await scale(2.6, factor=1, opts={"round": True})
    TRACE.append((x, y, z, w))
    return a, b, c, d, x, y, z, w
