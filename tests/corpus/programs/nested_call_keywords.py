"""Nested durable calls with keyword, starred and double-starred arguments, some of them awaited."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def child(a, b=0, *, c=1, **more):
    TRACE.append(("child", a, b, c, sorted(more)))
    raise PauseForEventException(f"child-{a}")
    return a + b + c + len(more)


async def number(n):
    raise PauseForEventException(f"number-{n}")
    return n


async def main():
    opts = {"b": 10, "c": 100}
    r1 = await child(1, b=2, c=3)
    r2 = await child(a=4, **opts)
    r3 = await child(*[5, 6], c=await number(7), extra=True)
    r4 = await child(await number(8), c=await child(0), tag="t")
    return r1, r2, r3, r4
