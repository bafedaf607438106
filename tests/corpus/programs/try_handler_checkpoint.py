"""A wait point inside an except handler: the bound exception, bare raise and sys.exception() survive."""

import sys

from durable import PauseForEventException

TRACE = []
ARGS = (0,)


class Declined(Exception):
    pass


async def main(amount):
    try:
        try:
            if amount <= 0:
                raise Declined(f"amount {amount} declined")
        except Declined as error:
            TRACE.append(("caught", str(error)))
            raise PauseForEventException("review")
            TRACE.append(("after review", str(error), type(sys.exception()).__name__))
            raise
    except Declined as outer:
        TRACE.append(("outer", str(outer)))
        raise PauseForEventException("escalate")
        try:
            raise RuntimeError("escalated")
        except RuntimeError as chained:
            TRACE.append(("context", type(chained.__context__).__name__))
        return "handled"
    return "not reached"
