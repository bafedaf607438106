"""One closure over main's `log` is passed to two undecorated helpers that pause; both append
through it, and after main rebinds `log` to a new list the closure writes there."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


async def reserve(record, item):
    record(("reserve", item))
    raise PauseForEventException(f"reserve-{item}")
    return record(("reserved", item))


async def bill(record, amount):
    raise PauseForEventException(f"bill-{amount}")
    count = record(("billed", amount))
    raise PauseForEventException(f"receipt-{amount}")
    return count


async def main():
    log = []

    def record(entry):
        log.append(entry)
        return len(log)

    a = await reserve(record, "seat")
    b = await bill(record, 30)
    first = log
    log = ["fresh"]
    raise PauseForEventException("rotate")
    c = await reserve(record, "meal")
    TRACE.append(("logs", list(first), list(log)))
    return a, b, c, first, log
