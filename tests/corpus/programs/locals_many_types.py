"""Locals of many types (int, float, str, containers, None, bytes, bool, complex, dataclass) survive checkpoints."""

import decimal
import fractions
from dataclasses import dataclass

from durable import PauseForEventException

TRACE = []
ARGS = ()


# Module-qualified annotations: the harness's plain run compiles this file with the harness's
# inherited `from __future__ import annotations` and without a sys.modules entry, where
# @dataclass crashes on a bare-name annotation such as `int`.
@dataclass
class Point:
    x: fractions.Fraction
    y: decimal.Decimal


async def main():
    i, f, s, big, c = 7, 2.5, "text", 2**100, complex(1, -1)
    lst = [1, [2, 3]]
    d = {"a": 1, "b": [4]}
    st = {3, 1, 2}
    fs = frozenset({"x"})
    tup = (1, "two", 3.0, None)
    nothing = None
    raw = b"\x00\xffbytes"
    buf = bytearray(b"ab")
    flag = False
    p = Point(fractions.Fraction(1, 3), decimal.Decimal("0.5"))
    raise PauseForEventException("first")
    TRACE.append((i, f, s, big, c, repr(lst), repr(d), sorted(st), fs, tup, nothing, raw))
    TRACE.append((bytes(buf), flag, repr(p)))
    p.x += i
    lst[1].append(f)
    d["b"].append(s)
    st.add(0)
    buf.extend(raw[:1])
    raise PauseForEventException("second")
    TRACE.append((repr(p), repr(lst), repr(d), sorted(st), bytes(buf), isinstance(p, Point)))
    return i, f, s, tup, nothing, raw, flag, big, c, p.x, p.y
