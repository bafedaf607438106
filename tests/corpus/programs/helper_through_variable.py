"""Helpers awaited indirectly: through a variable, a dict of handlers, a bound method in a
variable, getattr, functools.partial and a helper passed as an argument to another helper."""

import functools

from durable import PauseForEventException

TRACE = []
ARGS = (["refund", "ship", "refund"],)
DURABLE = ("main",)


async def refund(order):
    raise PauseForEventException(f"refund-{order}")
    TRACE.append(("refunded", order))
    return "R" + order


async def ship(order, carrier="post"):
    raise PauseForEventException(f"ship-{order}")
    TRACE.append(("shipped", order, carrier))
    return "S" + order + carrier


class Desk:
    def __init__(self):
        self.handled = 0

    async def handle(self, what):
        self.handled += 1
        raise PauseForEventException(f"desk-{what}")
        return (what, self.handled)


async def apply(action, *args):
    raise PauseForEventException("apply")
    return await action(*args)


async def main(kinds):
    handlers = {"refund": refund, "ship": functools.partial(ship, carrier="dhl")}
    out = []
    for i, kind in enumerate(kinds):
        out.append(await handlers[kind](str(i)))
    f = refund
    out.append(await f("var"))
    desk = Desk()
    handle = desk.handle
    out.append(await handle("bound"))
    out.append(await getattr(desk, "handle")("getattr"))  # noqa: B009 - on purpose
    out.append(await apply(ship, "passed"))
    return out, desk.handled
