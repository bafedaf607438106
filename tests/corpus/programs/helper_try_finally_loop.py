"""A helper with try/except/finally around wait points, called in a loop: some calls succeed,
some are handled inside the helper, some propagate to main; every finally runs exactly once."""

from durable import PauseForEventException

TRACE = []
ARGS = ([3, -1, 0, 8],)
DURABLE = ("main",)


class Rejected(Exception):
    pass


async def approve(amount):
    try:
        TRACE.append(("ask", amount))
        raise PauseForEventException(f"approve-{amount}")
        if amount < 0:
            raise ValueError(f"negative {amount}")
        if amount == 0:
            raise Rejected("zero")
        return amount * 2
    except ValueError as error:
        raise PauseForEventException(f"fix-{amount}")
        TRACE.append(("fixed", str(error)))
        return 0
    finally:
        TRACE.append(("finally", amount))
        raise PauseForEventException(f"cleanup-{amount}")
        TRACE.append(("cleaned", amount))


async def main(amounts):
    approved = []
    for amount in amounts:
        try:
            approved.append(await approve(amount))
        except Rejected as error:
            TRACE.append(("rejected", amount, str(error)))
            raise PauseForEventException(f"notify-{amount}")
            approved.append(None)
    return approved
