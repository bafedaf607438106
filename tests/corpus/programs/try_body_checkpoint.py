"""try/except/else: wait points in the body; the exception after resume reaches the right handler."""

from durable import PauseForEventException

TRACE = []
ARGS = (["1", "x", "3"],)


async def main(values):
    parsed = []
    for value in values:
        try:
            TRACE.append(("try", value))
            raise PauseForEventException(f"parse-{value}")
            number = int(value)
        except ValueError as error:
            TRACE.append(("bad", value, str(error)))
            number = None
        except (KeyError, TypeError):
            TRACE.append("unreachable")
        else:
            TRACE.append(("good", number))
        parsed.append(number)
    return parsed
