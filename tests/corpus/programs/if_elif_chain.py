"""if/elif/else chain with a wait point in every branch; the tested variable changes first, so a re-decided branch would show."""

from durable import PauseForEventException

TRACE = []
ARGS = ([5, 15, 25, 35],)


async def main(values):
    out = []
    for v in values:
        x = v
        if x < 10:
            x = x + 100
            raise PauseForEventException(f"small-{v}")
            out.append(("small", x))
        elif x < 20:
            x = 0
            raise PauseForEventException(f"medium-{v}")
            out.append(("medium", x))
        elif x < 30:
            x = 5
            raise PauseForEventException(f"large-{v}")
            out.append(("large", x))
        else:
            x = 15
            raise PauseForEventException(f"huge-{v}")
            out.append(("huge", x))
        TRACE.append(("after-if", v, x))
    return out
