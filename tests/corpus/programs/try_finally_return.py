"""A wait point inside finally while a return is in flight: the same value is returned after resume."""

from durable import PauseForEventException

TRACE = []
ARGS = (4,)


async def compute(x):
    try:
        TRACE.append(("compute", x))
        return x * x
    finally:
        TRACE.append("cleanup starts")
        raise PauseForEventException("cleanup")
        TRACE.append("cleanup ends")


async def main(x):
    first = await compute(x)
    try:
        TRACE.append("main body")
    finally:
        raise PauseForEventException("main-finally")
        TRACE.append("main finally")
    return first
