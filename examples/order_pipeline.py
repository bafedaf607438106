"""An order pipeline that survives restarts: run it, stop, approve later from another process.

    python examples/order_pipeline.py start order-7      # reserves stock, waits for approval
    python examples/order_pipeline.py approve order-7    # resumes mid-function, ships it

State lives in a DiskStateStore directory (DURABLE_EXAMPLE_DIR, default ./durable-example),
so the two commands can run in different processes, hours apart. The payment is a step with a
reconciler: if the process dies while charging, the next run asks the payment ledger whether
the charge went through instead of charging twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from durable import (
    DiskStateStore,
    DurableBackend,
    NotApplied,
    PauseForEventException,
    durable_execute,
    make_durable,
    step,
    wait_for_event,
)

STOCK = {"book": 3, "pen": 10}
PRICES = {"book": 12.5, "pen": 1.25}
STATE_DIR = Path(os.environ.get("DURABLE_EXAMPLE_DIR", "durable-example"))
LEDGER = STATE_DIR / "payments.jsonl"


def payment_in_ledger(order_id: str, amount: float) -> str:
    """The reconciler of `charge_payment`: did the interrupted charge go through?"""
    if LEDGER.exists():
        for line in LEDGER.read_text().splitlines():
            payment = json.loads(line)
            if payment["order"] == order_id:
                return payment["receipt"]
    raise NotApplied


@step(reconciler=payment_in_ledger)
def charge_payment(order_id: str, amount: float) -> str:
    """Stands for a payment provider: the charge is recorded in its ledger."""
    print(f"  charging {order_id}: {amount:.2f}")
    receipt = f"receipt-{order_id}"
    with LEDGER.open("a") as ledger:
        ledger.write(json.dumps({"order": order_id, "amount": amount, "receipt": receipt}) + "\n")
    return receipt


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
    total = sum(PRICES[item] * quantity for item, quantity in items.items())
    receipt = await charge_payment(order_id, total)
    try:
        print(f"{order_id}: approved by {approval['by']}; shipping")
        tracking = f"TRACK-{order_id.upper()}"
    finally:
        print(f"{order_id}: releasing the order lock")
    return {
        "order": order_id,
        "reservations": reservations,
        "receipt": receipt,
        "tracking": tracking,
    }


def backend() -> DurableBackend:
    return DurableBackend(DiskStateStore(STATE_DIR))


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
