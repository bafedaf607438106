"""del of a variable before a wait point: it stays unbound after resume (reading it raises UnboundLocalError)."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    temp = [1, 2, 3]
    keep = len(temp)
    del temp
    raise PauseForEventException("after-del")
    try:
        print(temp)  # noqa: F821 - deleted on purpose
    except UnboundLocalError as error:
        TRACE.append(str(error))
    temp = "rebound"
    raise PauseForEventException("after-rebind")
    pair = {"k": 1, "j": 2}
    del pair["k"]
    return keep, temp, pair
