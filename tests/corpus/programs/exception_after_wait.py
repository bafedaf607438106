"""main raises ValueError after a wait point; the error text (built from restored locals) is the outcome."""

from durable import PauseForEventException

TRACE = []
ARGS = (42,)


async def main(order):
    status = "checking"
    TRACE.append(("start", order))
    raise PauseForEventException("validate")
    TRACE.append(("validated", status))
    if order > 10:
        raise ValueError(f"order {order} rejected while {status}")
    return order
