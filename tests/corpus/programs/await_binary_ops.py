"""Awaits inside binary and unary operators: operands evaluate left to right, before and after the await."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


def _side(label, value):
    TRACE.append(label)
    return value


async def num(label, value):
    TRACE.append(("num", label))
    raise PauseForEventException(f"num-{label}")
    return value


async def main(a):
    x = a + await num("x", 10)
    y = _side("left", 2) * await num("y", 5) - _side("right", 1)
    z = await num("z1", 7) - await num("z2", 3) ** 2
    w = -await num("w", 4) + (a << await num("shift", 2))
    s = "ab" * await num("s", 2) + "c"
    return x, y, z, w, s
