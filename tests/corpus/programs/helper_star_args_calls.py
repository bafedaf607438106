"""Helpers called with *iterables and **mappings built from live locals (several of each,
mixed with explicit arguments), keyword-only parameters with and without defaults,
positional-only ones, and a helper forwarding *args/**kwargs to another that pauses."""

from durable import PauseForEventException

TRACE = []
ARGS = ([1, 2, 3], {"mode": "fast"})
DURABLE = ("main",)


async def target(a, b, /, c=10, *rest, mode, tag="none", **extra):
    raise PauseForEventException(f"target-{a}-{mode}")
    TRACE.append(("target", a, b, c, rest, mode, tag, sorted(extra.items())))
    return a + b + c + sum(rest)


async def forward(*args, **kwargs):
    kwargs.setdefault("tag", "fwd")
    raise PauseForEventException(f"forward-{len(args)}")
    return await target(*args, **kwargs)


async def pairs(**named):
    raise PauseForEventException("pairs")
    return sorted(named)


async def main(numbers, options):
    first = await target(*numbers, **options)
    second = await target(0, *numbers[1:], 5, 6, **options, tag="t", color="red")
    third = await forward(*(n * 10 for n in numbers[:2]), mode="slow")
    fourth = await forward(7, 8, c=1, **{"mode": "x"}, **{"extra": True})
    names = await pairs(**options, **{f"k{n}": n for n in numbers})
    return first, second, third, fourth, names
