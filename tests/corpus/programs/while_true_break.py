"""while True with a wait point in the body and a break decided after it."""

from durable import PauseForEventException

TRACE = []
ARGS = (10,)


async def main(n):
    steps = 0
    while True:
        steps += 1
        raise PauseForEventException(f"step-{steps}")
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        TRACE.append((steps, n))
        if n == 1:
            break
    TRACE.append("left loop")
    return steps, n
