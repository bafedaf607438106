"""A method of a module-level object called with an awaited argument: TRACE.append(await f()) records into TRACE."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def f(value):
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    TRACE.append(await f("first"))
    TRACE.append("second")
    return len(TRACE)
