"""return from inside a doubly nested loop, right after a wait point; nothing after the loops runs."""

from durable import PauseForEventException

TRACE = []
ARGS = ([[1, 2], [3, 4, 5], [6]], 4)


async def main(rows, target):
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            raise PauseForEventException(f"visit-{r}-{c}")
            TRACE.append(("visit", value))
            if value == target:
                return r, c
    TRACE.append("not found")
    return None
