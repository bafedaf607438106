"""A bare `except:` whose handler pauses and calls a nested durable function, resumed inside
the handler: the same clause catches the exception again, bare `raise` re-raises it."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ("order-5",)
DURABLE = ("main", "notify")


def charge(order):
    TRACE.append(("charge", order))
    raise ConnectionError(f"gateway down for {order}")


def refund(order):
    TRACE.append(("refund", order))
    return f"refunded {order}"


async def notify(order, text):
    await durable_execute(TRACE.append, ("notify", order, text))
    raise PauseForEventException(f"ack-{order}")
    return f"told {order}"


async def settle(order):
    try:
        await durable_execute(charge, order)
    except:  # noqa: E722 - the shape under test
        told = await notify(order, "charge failed")
        raise PauseForEventException("retry-or-refund")
        try:
            raise
        except:  # noqa: E722
            return told, await durable_execute(refund, order)


async def main(order):
    outcome = await settle(order)
    try:
        raise KeyError(order)
    except:  # noqa: E722
        raise PauseForEventException("last")
        return outcome, "done"
