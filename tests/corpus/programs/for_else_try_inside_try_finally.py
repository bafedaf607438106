"""Found by the generated-program test: a wait point in a try inside a for-else, all inside a try whose finally holds a wait point.

The inner wait point was left unlowered: NameError: name '_durable_pause' is not defined.
"""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    try:
        for i in range(2):
            TRACE.append(("loop", i))
        else:
            try:
                TRACE.append("else")
                raise PauseForEventException("in-else")
            finally:
                TRACE.append("inner finally")
    finally:
        TRACE.append("outer finally")
        raise PauseForEventException("outer-finally")
    return "done"
