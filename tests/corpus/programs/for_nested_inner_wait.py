"""Nested for loops with the wait point in the inner loop; both loops resume at the right item."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


async def main(rows):
    grid = []
    for i in range(rows):
        row = []
        for j in "ab":
            TRACE.append(("cell", i, j))
            raise PauseForEventException(f"cell-{i}{j}")
            row.append(f"{i}{j}")
        grid.append(row)
        TRACE.append(("row", i))
    return grid
