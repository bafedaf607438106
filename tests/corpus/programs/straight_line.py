from durable import PauseForEventException

TRACE = []
ARGS = (3,)


async def main(n):
    a = n * 2
    TRACE.append(("start", a))
    raise PauseForEventException("go")
    b = a + 1
    TRACE.append(("after", a, b))
    raise PauseForEventException("again")
    TRACE.append(("end", a + b))
    return a + b
