"""Helpers awaited inside expressions: operands of +, arguments of a helper call, a
comprehension, a conditional expression, an f-string and a chained comparison; every helper
pauses, so each partial value must survive the resume."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)
DURABLE = ("main",)


async def score(x, tag="s"):
    raise PauseForEventException(f"{tag}-{x}")
    TRACE.append(("score", tag, x))
    return x * x


async def combine(a, b):
    raise PauseForEventException(f"combine-{a}-{b}")
    return a - b


async def main(n):
    total = await score(1, "a") + await score(2, "b")
    nested = await combine(await score(n, "c"), await score(1, "d"))
    squares = [await score(i, "e") for i in range(n)]
    pick = await score(4, "f") if total > 3 else await score(5, "g")
    label = f"{await score(2, 'h')}/{total}"
    inside = 0 < await score(1, "i") <= total
    return total, nested, squares, pick, label, inside
