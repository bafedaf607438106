"""`match await helper()` subjects, nested match statements with pauses in inner case bodies,
positional class patterns through __match_args__, guards over locals changed before a pause,
and walrus inside a guard; each case is chosen once."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ([("order", 3), ("refund", {"id": 7, "items": [1, 2]}), ("ping",), ("order", -1)],)
DURABLE = ("main",)


class Event:
    __match_args__ = ("kind", "data")

    def __init__(self, kind, data):
        self.kind = kind
        self.data = data


def record(*what):
    TRACE.append(what)
    return what


async def parse(raw):
    raise PauseForEventException(f"parse-{raw[0]}")
    return Event(raw[0], raw[1] if len(raw) > 1 else None)


async def main(messages):
    limit = 2
    handled = []
    for raw in messages:
        match await parse(raw):
            case Event("order", int(qty)) if qty > limit:
                limit = qty
                raise PauseForEventException("big-order")
                handled.append(("big", qty, limit))
            case Event("order", qty) if (doubled := qty * 2) < 0:
                await durable_execute(record, "negative", doubled)
                handled.append(("negative", doubled))
            case Event("refund", {"id": ident, "items": [first, *others]}):
                match len(others):
                    case 0:
                        handled.append("single")
                    case n:
                        raise PauseForEventException(f"multi-{ident}")
                        handled.append(("multi", ident, first, n))
            case Event(kind, None):
                await durable_execute(record, "bare", kind)
                handled.append(kind)
    return handled, limit
