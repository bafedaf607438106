"""*args and **kwargs parameters in main and a child, survive wait points; child gets spread arguments."""

from durable import PauseForEventException

TRACE = []
ARGS = (1, 2, 3)


async def describe(head, *rest, sep=",", **extra):
    raise PauseForEventException(f"describe-{head}")
    TRACE.append(("describe", head, rest, sep, sorted(extra.items())))
    return sep.join(str(v) for v in (head, *rest)), extra


async def main(*args, **kwargs):
    raise PauseForEventException("main")
    TRACE.append(("main", args, kwargs))
    one = await describe(*args)
    two = await describe(*args, sep=";", color="red", size=3)
    three = await describe(0, **{"k": None})
    return args, kwargs, one, two, three
