"""Regression (COMPILER.md 3.2): the for iterable is evaluated once, not again on resume."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


def _make_items(n):
    TRACE.append(("made", n))
    return [i * 10 for i in range(n)]


async def main(n):
    seen = []
    for item in _make_items(n):
        raise PauseForEventException(f"item-{item}")
        seen.append(item)
        TRACE.append(("item", item))
    return seen
