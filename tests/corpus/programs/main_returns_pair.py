"""Regression: a durable main returning the tuple (1, 2) after a wait point returns it unchanged."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    first = 1
    raise PauseForEventException("go")
    TRACE.append(first)
    return first, first + 1
