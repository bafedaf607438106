"""A durable function awaiting itself (factorial) with a wait point at every level, before and after the recursion."""

from durable import PauseForEventException

TRACE = []
ARGS = (4,)


async def factorial(n):
    TRACE.append(("enter", n))
    raise PauseForEventException(f"enter-{n}")
    if n <= 1:
        return 1
    below = await factorial(n - 1)
    raise PauseForEventException(f"leave-{n}")
    TRACE.append(("leave", n, below))
    return n * below


async def main(n):
    return await factorial(n)
