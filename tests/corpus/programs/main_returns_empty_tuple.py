"""Regression: a durable main returning () after a nested call and a wait point returns ()."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def child():
    raise PauseForEventException("child")
    return ()


async def main():
    value = await child()
    TRACE.append(("child gave", value))
    raise PauseForEventException("main")
    return value
