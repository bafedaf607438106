"""Awaits inside f-strings, one await per f-string, with format specs and conversions; earlier parts are formatted first."""

from durable import PauseForEventException

TRACE = []
ARGS = ("x",)


class Loud:
    def __format__(self, spec):
        TRACE.append(("format", spec))
        return "LOUD"


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main(x):
    a = f"{x}{await f('y')}"
    b = f"<{Loud()}|{await f(3.14159):.2f}>"
    c = f"{await f(42):>6}" + f"{x!r:^5}"
    d = f"{x!r}-{await f('q')!r}"
    return a, b, c, d
