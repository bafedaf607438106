"""A while whose test awaits a durable call (with a wait point inside), with continue and an else."""

from durable import PauseForEventException

TRACE = []
ARGS = (4,)


async def more(i, limit):
    TRACE.append(("test", i))
    raise PauseForEventException(f"test-{i}")
    return i < limit


async def main(limit):
    i = 0
    total = 0
    while await more(i, limit) and i != 99:
        i += 1
        if i == 2:
            continue
        raise PauseForEventException(f"body-{i}")
        total += i
        TRACE.append(("body", i, total))
    else:
        TRACE.append("else")
    return total
