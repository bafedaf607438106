"""break and continue crossing a finally that holds a wait point, in nested loops."""

from durable import PauseForEventException

TRACE = []
ARGS = (5,)


async def main(n):
    done = []
    for i in range(n):
        j = 0
        while True:
            try:
                j += 1
                if j == 2:
                    continue
                if j > 3:
                    break
                if i == 3:
                    break
                done.append((i, j))
            finally:
                TRACE.append(("finally", i, j))
                raise PauseForEventException(f"f-{i}-{j}")
        try:
            if i % 2:
                continue
            TRACE.append(("even", i))
        finally:
            raise PauseForEventException(f"outer-{i}")
            TRACE.append(("outer finally", i))
    return done
