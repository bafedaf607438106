"""An f-string with two awaited placeholders: both are hoisted in order, the first formatted before the second await."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    text = f"{await f(1)}-{await f(2)}"
    return text
