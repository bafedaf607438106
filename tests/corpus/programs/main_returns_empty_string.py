"""Regression: a durable main returning "" (and None on another path) after wait points."""

from durable import PauseForEventException

TRACE = []
ARGS = ("",)


async def main(text):
    raise PauseForEventException("go")
    if text:
        TRACE.append("non-empty")
        return None
    TRACE.append("empty")
    return text
