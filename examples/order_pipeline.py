"""An order pipeline that survives restarts: run it, stop, approve later from another process.

    python examples/order_pipeline.py start order-7      # reserves stock, waits for approval
    python examples/order_pipeline.py approve order-7    # resumes mid-function, ships it

State lives in a DiskStateStore directory (DURABLE_EXAMPLE_DIR, default ./durable-example),
so the two commands can run in different processes, hours apart.
"""

from __future__ import annotations

import asyncio
import os
import sys

from durable import (
    DiskStateStore,
    DurableBackend,
    PauseForEventException,
    durable_execute,
    make_durable,
    wait_for_event,
)

STOCK = {"book": 3, "pen": 10}


def reserve_stock(item: str, quantity: int) -> str:
    """A side effect: durable_execute keeps its result, so it is not repeated on resume."""
    print(f"  reserving {quantity} x {item}")
    return f"reservation-{item}-{quantity}"


@make_durable
async def reserve(items: dict[str, int]) -> list[str]:
    reservations = []
    for item, quantity in items.items():
        if STOCK.get(item, 0) < quantity:
            raise ValueError(f"not enough {item}: {STOCK.get(item, 0)} left, {quantity} wanted")
        reservations.append(await durable_execute(reserve_stock, item, quantity))
    return reservations


@make_durable
async def process_order(order_id: str, items: dict[str, int]) -> dict:
    reservations = await reserve(items)
    print(f"{order_id}: reserved {len(reservations)} item kinds; waiting for approval")
    approval = await wait_for_event("approve")
    try:
        print(f"{order_id}: approved by {approval['by']}; shipping")
        tracking = f"TRACK-{order_id.upper()}"
    finally:
        print(f"{order_id}: releasing the order lock")
    return {"order": order_id, "reservations": reservations, "tracking": tracking}


def backend() -> DurableBackend:
    return DurableBackend(DiskStateStore(os.environ.get("DURABLE_EXAMPLE_DIR", "durable-example")))


async def main(command: str, order_id: str) -> None:
    items = {"book": 1, "pen": 2}
    if command == "approve":
        backend().publish_event(order_id, "approve", {"by": "ada"})
    try:
        result = await process_order(order_id, items, orchestration_backend=backend(), instance_id=order_id)
    except PauseForEventException as pause:
        print(f"{order_id}: paused until event {pause.event!r} arrives")
        return
    print(f"{order_id}: done -> {result}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "approve"):
        sys.exit("usage: python examples/order_pipeline.py start|approve ORDER_ID")
    asyncio.run(main(sys.argv[1], sys.argv[2]))
