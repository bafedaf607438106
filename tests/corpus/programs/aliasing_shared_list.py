"""Objects shared by two variables stay shared across snapshots: a = []; b = a; wait; a.append(1); b == [1]."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    a = []
    b = a
    nested = {"list": a, "again": [a, a]}
    cycle = [a]
    cycle.append(cycle)
    raise PauseForEventException("snapshot")
    a.append(1)
    assert b == [1], b
    assert nested["list"] is a and nested["again"][1] is b
    assert cycle[1] is cycle and cycle[0] is a
    TRACE.append((list(b), [list(x) for x in nested["again"]], a is b))
    raise PauseForEventException("again")
    b.append(2)
    return a, a is b, nested["list"] is a
