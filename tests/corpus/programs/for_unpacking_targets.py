"""for with nested-tuple, starred, subscript and attribute targets, waits inside the body."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


class Holder:
    value = None


async def main():
    for (a, b), c in [((1, 2), 3), ((4, 5), 6)]:
        raise PauseForEventException(f"nested-{a}")
        TRACE.append(("nested", a, b, c))
    for first, *rest in ["xyz", "uv"]:
        raise PauseForEventException(f"star-{first}")
        TRACE.append(("star", first, rest))
    slots = [None, None]
    holder = Holder()
    for slots[1] in ("p", "q"):
        raise PauseForEventException(f"slot-{slots[1]}")
        TRACE.append(("slot", list(slots)))
    for holder.value in range(2):
        raise PauseForEventException(f"attr-{holder.value}")
        TRACE.append(("attr", holder.value))
    return a, b, c, first, rest, slots, holder.value
