"""A class defined inside main with async methods that pause: its instance (state in
attributes) and a bound method kept in a variable live across wait points."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)
DURABLE = ("main",)


async def main(n):
    prefix = "job"

    class Counter:
        def __init__(self):
            self.count = 0

        async def bump(self, by):
            raise PauseForEventException(f"bump-{self.count}")
            self.count += by
            return f"{prefix}-{self.count}"

    counter = Counter()
    bump = counter.bump
    labels = []
    for i in range(n):
        labels.append(await bump(i + 1))
    raise PauseForEventException("done")
    TRACE.append(("count", counter.count, type(counter).__name__))
    return labels, counter.count
