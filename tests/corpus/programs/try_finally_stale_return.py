"""Found by the generated-program test: a return replaced by an exception that an outer except handles.

The inner finally raises, so the return never happens; the outer handler catches the
exception and the outer finally parks. Resumed there, the try must end normally (not replay
the abandoned return).
"""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    try:
        try:
            return "abandoned"
        finally:
            raise ValueError("from finally")
    except ValueError as error:
        TRACE.append(("caught", str(error)))
    finally:
        TRACE.append("outer finally")
        raise PauseForEventException("outer")
    TRACE.append("after")
    return "after"
