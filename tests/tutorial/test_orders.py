"""The durable side of docs/migrating.md runs: approved within the window, or expired."""

import asyncio

from durable import DurableBackend, InMemoryStateStore
from durable.worker import Worker
from tests.tutorial import orders


async def test_an_approved_order_is_charged_and_shipped():
    backend = DurableBackend(InMemoryStateStore())
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(backend, min_poll=0.01, max_poll=0.05).run(stop))
    try:
        outcome = await orders.place_and_approve(backend)
    finally:
        stop.set()
        await worker
    assert outcome == {
        "order": "order-7",
        "receipt": "receipt-order-7",
        "parcel": "parcel-order-7",
        "by": "ada",
    }


async def test_an_order_not_approved_within_the_window_expires(monkeypatch):
    monkeypatch.setattr(orders, "APPROVAL_WINDOW", 0)
    backend = DurableBackend(InMemoryStateStore())
    outcome = await orders.order("order-8", 5.0, orchestration_backend=backend, instance_id="o8")
    assert outcome == {"order": "order-8", "status": "expired"}
