"""ExceptionGroups: a group built from a gather with return_exceptions=True after pauses,
split by except* handlers (with no checkpoint inside the try), kept in a local across a
pause, and a group raised by a helper after its pause caught by except* in main."""

import asyncio

from durable import PauseForEventException

TRACE = []
ARGS = (["ok", "bad", "worse", "fine"],)
DURABLE = ("main",)


async def check(item):
    raise PauseForEventException(f"check-{item}")
    if item == "bad":
        raise ValueError(item)
    if item == "worse":
        raise KeyError(item)
    return item.upper()


async def main(items):
    outcomes = await asyncio.gather(*[check(i) for i in items], return_exceptions=True)
    errors = [o for o in outcomes if isinstance(o, Exception)]
    group = ExceptionGroup("checks", errors)
    raise PauseForEventException("grouped")
    handled = []
    try:
        raise group
    except* ValueError as values:
        handled.append(("values", [str(e) for e in values.exceptions]))
    except* KeyError as keys:
        handled.append(("keys", [str(e) for e in keys.exceptions]))
    raise PauseForEventException("handled")
    TRACE.append(("handled", handled, [type(o).__name__ for o in outcomes]))
    match_, rest = group.split(KeyError)
    raise PauseForEventException("split")
    TRACE.append((str(match_), len(rest.exceptions), group.message))
    return [o for o in outcomes if isinstance(o, str)], len(group.exceptions)
