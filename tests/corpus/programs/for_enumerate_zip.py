"""for over enumerate(...), zip(...) and enumerate(zip(...)) with tuple targets and wait points inside."""

from durable import PauseForEventException

TRACE = []
ARGS = (["a", "b", "c"], [1, 2, 3, 4])


async def main(letters, numbers):
    for i, letter in enumerate(letters, start=1):
        raise PauseForEventException(f"enum-{i}")
        TRACE.append(("enum", i, letter))
    pairs = []
    for letter, number in zip(letters, numbers, strict=False):
        raise PauseForEventException(f"zip-{letter}")
        pairs.append(letter * number)
    for i, (letter, number) in enumerate(zip(letters, reversed(numbers), strict=False)):
        TRACE.append(("both", i, letter, number))
        raise PauseForEventException(f"both-{i}")
        pairs.append((i, number))
    return pairs
