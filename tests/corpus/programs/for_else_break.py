"""for-else with a break after a wait point: the else is skipped, also when resumed inside the loop."""

from durable import PauseForEventException

TRACE = []
ARGS = ([2, 3, 4],)


async def main(numbers):
    found = None
    for n in numbers:
        raise PauseForEventException(f"check-{n}")
        TRACE.append(("checked", n))
        if n % 2:
            found = n
            raise PauseForEventException("found")
            break
    else:
        raise PauseForEventException("else")
        TRACE.append("else ran")
    TRACE.append(("after", found))
    return found
