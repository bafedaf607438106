"""A wait point in the else clause of a try; the handlers do not catch what the else raises."""

from durable import PauseForEventException

TRACE = []
ARGS = ({"a": 1},)


async def main(table):
    try:
        value = table["a"]
    except KeyError:
        TRACE.append("missing")
        value = 0
    else:
        TRACE.append(("found", value))
        raise PauseForEventException("confirm")
        value += 10
        TRACE.append(("confirmed", value))
    try:
        try:
            TRACE.append("second try")
        except ValueError:
            TRACE.append("never")
        else:
            raise PauseForEventException("else")
            raise ValueError("raised in else")
    except ValueError as error:
        TRACE.append(("outer caught", str(error)))
    return value
