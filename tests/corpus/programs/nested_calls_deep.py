"""Durable calls four levels deep with wait points before and after the nested call at each level."""

from durable import PauseForEventException

TRACE = []
ARGS = ("x",)


async def level3(tag):
    raise PauseForEventException(f"l3-{tag}")
    TRACE.append(("l3", tag))
    return [tag]


async def level2(tag):
    raise PauseForEventException(f"l2-before-{tag}")
    got = await level3(tag + "2")
    raise PauseForEventException(f"l2-after-{tag}")
    TRACE.append(("l2", got))
    return got + [2]


async def level1(tag):
    local = tag * 2
    raise PauseForEventException(f"l1-before-{tag}")
    got = await level2(local)
    raise PauseForEventException(f"l1-after-{tag}")
    TRACE.append(("l1", local, got))
    return got + [1]


async def main(tag):
    result = await level1(tag)
    raise PauseForEventException("main-after")
    return result + [0]
