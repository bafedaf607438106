"""Lambdas over locals that main reassigns after a wait point read the new value after a
resume (and a `del` of the captured variable unbinds it for the lambda); a lambda that mutates a shared list is seen by main, and the reverse."""

from durable import PauseForEventException

TRACE = []
ARGS = (5,)
DURABLE = ("main",)


async def main(limit):
    threshold = limit
    over = lambda x: x > threshold  # noqa: E731
    seen = []
    note = lambda x: seen.append(x) or len(seen)  # noqa: E731
    TRACE.append(("before", over(4), over(6), note("a")))
    raise PauseForEventException("first")
    threshold = 2
    TRACE.append(("after-rebind", over(4), over(1)))
    raise PauseForEventException("second")
    TRACE.append(("after-resume", over(4), over(1), note("b")))
    seen.append("direct")
    threshold = threshold * 10
    raise PauseForEventException("third")
    TRACE.append(("final", over(15), over(25), note("c"), list(seen)))
    del threshold
    raise PauseForEventException("deleted")
    try:
        over(1)
    except NameError as error:
        TRACE.append(("unbound", str(error)))
    threshold = 0
    raise PauseForEventException("restored")
    return seen, threshold, over(1)
