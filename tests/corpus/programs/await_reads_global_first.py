"""X + await f() where f rebinds the module global X: CPython reads X before the await, later reads see the new X."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
X = 1


def _set_x(value):
    global X
    X = value


async def f():
    _set_x(100)
    raise PauseForEventException("f")
    return 10


async def main():
    total = X + await f()
    TRACE.append(("after", total, X))
    raise PauseForEventException("again")
    return total, X
