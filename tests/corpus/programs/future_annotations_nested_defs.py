"""Under `from __future__ import annotations`, a nested function and a local class defined
after a pause (and a helper's local dataclass) keep their annotations as unevaluated
strings, naming types that do not exist at run time, as in the original."""

# ruff: noqa: F821 - the names the annotations use are never defined, on purpose
from __future__ import annotations

import dataclasses

from durable import PauseForEventException

TRACE = []
ARGS = (3,)
DURABLE = ("main",)


async def make_line(qty: Quantity) -> Line:
    raise PauseForEventException("line")

    @dataclasses.dataclass
    class Line:
        qty: Quantity
        note: NotDefinedAnywhere = "none"

    return Line(qty)


async def main(qty: int) -> Receipt:
    raise PauseForEventException("start")

    def convert(order: Order, *, rate: Rate = 2) -> Receipt:
        return order * rate

    class Row:
        total: Money

    line = await make_line(qty)
    TRACE.append((convert.__annotations__, Row.__annotations__, make_line.__annotations__))
    return convert(line.qty), line.note, dataclasses.fields(line)[0].type
