"""while-else: the else runs when the test turns false and not after a break, waits in body and else."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


async def main(limit):
    i = 0
    while i < limit:
        i += 1
        raise PauseForEventException(f"first-{i}")
        TRACE.append(("first", i))
    else:
        raise PauseForEventException("first-else")
        TRACE.append("first else")
    j = 0
    while j < limit:
        j += 1
        raise PauseForEventException(f"second-{j}")
        if j == 2:
            break
    else:
        TRACE.append("second else must not run")
    TRACE.append(("second", j))
    return i, j
