"""Found by the generated-program test: a return leaving two finally blocks that each hold a wait point.

The inner finally parks, then the outer one; resumed there, the pending return must still
happen after the outer finally ends (not fall through to the statement after the try).
"""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    try:
        try:
            return "inner"
        finally:
            TRACE.append("inner finally")
            raise PauseForEventException("inner-finally")
    finally:
        TRACE.append("outer finally")
        raise PauseForEventException("outer-finally")
    TRACE.append("fell through")
    return "fell through"
