"""Saga over orders: `durable_execute(charge, ..., reconciler=lambda: lookup(order))` in a
loop, plus a reconciler stored in a variable before a wait point that must read the `order`
reassigned after it. The first charge of each order 'crashes' after it took effect, so the
reconciler (not the charge) settles it on resume."""

from durable import NotApplied, PauseForEventException, durable_execute

TRACE = []
ARGS = (["o1", "o2"],)
DURABLE = ("main",)
LEDGER = {}
CRASHED = set()


def lookup(order):
    if order in LEDGER:
        return LEDGER[order]
    raise NotApplied()


def charge(order):
    LEDGER[order] = "rcpt-" + order
    TRACE.append(("charged", order))
    if __name__.startswith("corpus_durable") and order not in CRASHED:
        CRASHED.add(order)
        from tests.crashing import SimulatedCrash

        raise SimulatedCrash(order)
    return LEDGER[order]


async def main(orders):
    receipts = []
    for order in orders:
        raise PauseForEventException(f"approve-{order}")
        receipts.append(await durable_execute(charge, order, reconciler=lambda: lookup(order)))  # noqa: B023 - on purpose
    order = "first"
    check = lambda: lookup(order)  # noqa: E731
    raise PauseForEventException("late")
    order = "late-" + receipts[-1]
    receipts.append(await durable_execute(charge, order, reconciler=check))
    return receipts, sorted(LEDGER)
