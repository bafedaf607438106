"""Variables bound on only some paths before a wait point: bound ones are restored, unbound ones stay unbound."""

from durable import PauseForEventException

TRACE = []
ARGS = ([1, 2, 3, 4],)


async def main(values):
    seen = []
    for v in values:
        if v % 2 == 0:
            even = v
        raise PauseForEventException(f"value-{v}")
        try:
            seen.append(("even", even))
        except UnboundLocalError as error:
            seen.append(("unbound", str(error)))
    if len(values) > 10:
        late = "never"
    raise PauseForEventException("end")
    try:
        seen.append(late)
    except UnboundLocalError:
        seen.append("late unbound")
    return seen
