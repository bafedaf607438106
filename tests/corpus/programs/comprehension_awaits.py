"""List/set/dict comprehensions with awaits of durable calls: each await is a checkpoint."""

from durable import PauseForEventException

TRACE = []
ARGS = ([1, -2, 3],)


async def double(x):
    TRACE.append(("double", x))
    raise PauseForEventException(f"double-{x}")
    return 2 * x


def _source(values):
    TRACE.append("source evaluated")
    return values


async def main(values):
    x = "outer x"
    doubled = [await double(x) for x in _source(values) if x > 0]
    TRACE.append(("x after comprehension", x))
    squares = {x * x for x in values}
    table = {str(v): await double(v) for v in values}
    pairs = [(a, await double(b)) for a in range(2) for b in range(a + 1) if a or b == 0]
    nested = [[await double(c) for c in range(r)] for r in range(3)]
    return doubled, sorted(squares), table, pairs, nested
