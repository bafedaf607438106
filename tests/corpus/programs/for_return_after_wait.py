"""return as the statement right after a wait point in a for body: the first item is returned on resume."""

from durable import PauseForEventException

TRACE = []
ARGS = (["first", "second"],)


async def main(items):
    for item in items:
        TRACE.append(("visit", item))
        raise PauseForEventException(f"visit-{item}")
        return item
    return None
