"""Undecorated helpers calling helpers three deep, each pausing before and after the deeper
await: every level resumes mid-helper with its own locals, and values flow back up."""

from durable import PauseForEventException

TRACE = []
ARGS = ("order-7",)
DURABLE = ("main",)


async def fetch_price(sku):
    TRACE.append(("fetch", sku))
    raise PauseForEventException(f"price-{sku}")
    price = len(sku) * 3
    TRACE.append(("priced", sku, price))
    return price


async def price_line(sku, qty):
    unit = await fetch_price(sku)
    subtotal = unit * qty
    raise PauseForEventException(f"line-{sku}")
    TRACE.append(("line", sku, qty, subtotal))
    return subtotal


async def price_order(order, lines):
    TRACE.append(("order-start", order))
    totals = {}
    for sku, qty in lines:
        totals[sku] = await price_line(sku, qty)
        raise PauseForEventException(f"after-{sku}")
    TRACE.append(("order-totals", order, sorted(totals.items())))
    return sum(totals.values()), totals


async def main(order):
    total, totals = await price_order(order, [("ab", 2), ("xyz", 1)])
    raise PauseForEventException("confirm")
    TRACE.append(("confirmed", order, total))
    return {"order": order, "total": total, "lines": totals}
