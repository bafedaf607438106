"""NS.x += await f() where f rebinds NS.x (a module-level object): NS.x is read before the await and written after."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


class Namespace:
    x = 1


NS = Namespace()


async def f():
    NS.x = 100
    raise PauseForEventException("f")
    return 10


async def main():
    NS.x += await f()
    TRACE.append(NS.x)
    return NS.x
