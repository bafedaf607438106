"""The order workflow of docs/migrating.md, written for durable (shown there beside Temporal
and DBOS versions of it)."""

import durable
from durable import RetryPolicy, make_durable, step, wait_for_event

APPROVAL_WINDOW = 24 * 3600  # seconds


@step(retry=RetryPolicy(max_attempts=5))
async def charge(order_id: str, amount: float) -> str:
    return f"receipt-{order_id}"  # call the payment service here


@step
async def ship(order_id: str) -> str:
    return f"parcel-{order_id}"  # call the shipping service here


@make_durable
async def order(order_id: str, amount: float) -> dict:
    receipt = await charge(order_id, amount)
    which, decision = await durable.first(
        wait_for_event("approval"), durable.sleep(APPROVAL_WINDOW)
    )
    if which == 1:
        return {"order": order_id, "status": "expired"}
    parcel = await ship(order_id)
    return {"order": order_id, "receipt": receipt, "parcel": parcel, "by": decision["by"]}


async def place_and_approve(backend) -> dict:
    """The client side: start the order, approve it, wait for its result (a worker runs it)."""
    await order.start("order-7", 120.0, instance_id="order-7", orchestration_backend=backend)
    await backend.publish_event_async("order-7", "approval", {"by": "ada"})
    return await order.handle("order-7", orchestration_backend=backend).result(timeout=30)
