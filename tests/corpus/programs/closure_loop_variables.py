"""Lambdas made in a loop (late-binding `lambda: i` and early-binding `lambda i=i: i`), a
sort key over a live dict, and a lambda passed as the step function all see the same
variables after pauses that fall between their creation and their call."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = (["pear", "fig", "apple"],)


def run(fn, *args):
    value = fn(*args)
    TRACE.append(("run", value))
    return value


async def main(fruits):
    late, early = [], []
    for i, fruit in enumerate(fruits):
        late.append(lambda: (i, fruit))  # noqa: B023 (late binding on purpose)
        early.append(lambda i=i, fruit=fruit: (i, fruit))
        raise PauseForEventException(f"made-{i}")
    weights = {f: len(f) for f in fruits}
    by_weight = lambda f: (weights[f], f)  # noqa: E731
    raise PauseForEventException("weights")
    weights["fig"] = 100
    order = sorted(fruits, key=by_weight)
    raise PauseForEventException("sorted")
    i = 99
    seen_late = [f() for f in late]
    seen_early = [f() for f in early]
    scale = 3
    total = await durable_execute(run, lambda n: n * scale, len(fruits))
    scale = 10
    again = await durable_execute(run, lambda n: n * scale, len(fruits))
    TRACE.append(("order", order, seen_late, seen_early))
    return total, again, by_weight("pear")
