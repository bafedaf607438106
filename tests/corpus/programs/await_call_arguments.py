"""g(a(), await h(), c()): the callee and a() run before h's wait point, c() after; also keywords and stars."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


def a():
    TRACE.append("a")
    return "A"


def c():
    TRACE.append("c")
    return "C"


def combine(*args, **kwargs):
    TRACE.append(("combine", args, kwargs))
    return args, kwargs


def _pick():
    TRACE.append("pick callee")
    return combine


async def h(tag):
    TRACE.append(("h", tag))
    raise PauseForEventException(f"h-{tag}")
    return tag.upper()


async def main():
    first = combine(a(), await h("one"), c())
    second = _pick()(x=a(), y=await h("two"), z=c())
    third = combine(*[a(), c()], await h("three"), **{"k": c()})
    fourth = combine(await h("four"), await h("five"), sep=a())
    return first, second, third, fourth
