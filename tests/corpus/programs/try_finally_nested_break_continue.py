"""Found by the generated-program test: continue and break leaving two finally blocks that each hold a wait point.

Resumed inside the outer finally, the pending continue/break must still happen when it ends.
"""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    for i in range(3):
        try:
            try:
                if i == 0:
                    continue
                break
            finally:
                TRACE.append(("inner finally", i))
                raise PauseForEventException(f"inner-{i}")
        finally:
            TRACE.append(("outer finally", i))
            raise PauseForEventException(f"outer-{i}")
        TRACE.append(("fell through", i))
    return i
