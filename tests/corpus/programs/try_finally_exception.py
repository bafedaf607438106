"""A wait point inside finally while an exception is in flight: it propagates after the finally."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def risky():
    try:
        TRACE.append("risky body")
        raise ValueError("boom")
    finally:
        raise PauseForEventException("audit")
        TRACE.append("audited")


async def main():
    try:
        await risky()
    except ValueError as error:
        TRACE.append(("main caught", str(error)))
    try:
        try:
            raise KeyError("k")
        finally:
            raise PauseForEventException("inner-finally")
            TRACE.append("inner finally")
    except KeyError as error:
        TRACE.append(("caught key", str(error)))
    return "ok"
