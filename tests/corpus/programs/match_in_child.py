"""match in a nested durable call with the subject computed by an await; a break inside a case."""

from durable import PauseForEventException

TRACE = []
ARGS = ([3, "stop", 5],)


async def kind(value):
    raise PauseForEventException(f"kind-{value}")
    return "text" if isinstance(value, str) else "number"


async def main(values):
    total = 0
    for value in values:
        match await kind(value):
            case "number":
                total += value
                raise PauseForEventException(f"added-{value}")
                TRACE.append(("total", total))
            case "text":
                TRACE.append(("stop at", value))
                break
    return total
