"""for over a list, a tuple and a stepped range, with a wait point in each body."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    total = 0
    for word in ["a", "bb", "ccc"]:
        raise PauseForEventException(f"list-{word}")
        total += len(word)
        TRACE.append(("list", word, total))
    for item in (10, None, 2.5):
        raise PauseForEventException(f"tuple-{item}")
        TRACE.append(("tuple", item))
    for k in range(10, 0, -4):
        total += k
        raise PauseForEventException(f"range-{k}")
        TRACE.append(("range", k, total))
    return total
