"""Closures kept in a dict and a list live across wait points: early-bound (default args)
and late-bound (cell) captures, including a loop variable, behave as in plain Python."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def main():
    rate = 2
    late = []
    early = []
    for i in range(3):
        late.append(lambda: i * rate)  # noqa: B023 - late binding on purpose
        early.append(lambda i=i: i * rate)
    ops = {"double": lambda x: x * rate, "label": lambda x: f"{x}@{rate}"}
    raise PauseForEventException("built")
    TRACE.append(([f() for f in late], [f() for f in early], ops["double"](7)))
    rate = 5
    raise PauseForEventException("rebound")
    ops["shout"] = lambda x: ops["label"](x).upper()
    i = 100
    raise PauseForEventException("extended")
    TRACE.append(([f() for f in late], [f() for f in early], ops["shout"]("ok")))
    return [f() for f in early], sorted(ops), ops["double"](1)
