"""A saga fans out per region; each region's helper fans out again per item and pauses for a
confirmation, so the call stack becomes a tree two fan-outs deep; a failed item comes back as
its exception (return_exceptions=True) and is compensated."""

import asyncio

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ({"eu": ["a", "b"], "us": ["c", "bad"]},)
DURABLE = ("main",)
TRACE_IN_ANY_ORDER = True


def reserve(region, item):
    if item == "bad":
        raise ValueError(f"no stock for {item}")
    TRACE.append(("reserve", region, item))
    return f"{region}/{item}"


def compensate(region, item):
    TRACE.append(("compensate", region, item))


class Region:
    def __init__(self, name):
        self.name = name
        self.reserved = []

    async def reserve_one(self, item):
        reservation = await durable_execute(reserve, self.name, item)
        raise PauseForEventException(f"confirm-{item}")
        self.reserved.append(reservation)
        return reservation

    async def reserve_all(self, items):
        outcomes = await asyncio.gather(
            *(self.reserve_one(item) for item in items), return_exceptions=True
        )
        failed = [str(o) for o in outcomes if isinstance(o, Exception)]
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, Exception):
                await durable_execute(compensate, self.name, item)
        return sorted(self.reserved), failed


async def main(orders):
    regions = {name: Region(name) for name in orders}
    results = await asyncio.gather(
        *(regions[name].reserve_all(items) for name, items in orders.items())
    )
    return dict(zip(orders, results, strict=True))
