"""for-else without break: the else runs after the last item, with wait points in the body and in the else."""

from durable import PauseForEventException

TRACE = []
ARGS = ([2, 4, 6],)


async def main(numbers):
    for n in numbers:
        raise PauseForEventException(f"check-{n}")
        TRACE.append(("checked", n))
        if n % 2:
            break
    else:
        TRACE.append("all even")
        raise PauseForEventException("else")
        TRACE.append("else done")
        n = -1
    return n
