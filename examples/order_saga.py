"""An order saga: reserve stock, charge the card, ship; when a later step fails, the earlier
ones are undone in reverse order (refund the card, then release the stock).

    python examples/order_saga.py demo               # two orders, with a worker in a subprocess

or step by step, each command a new process (the state is in saga.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///saga.db order_saga
    python examples/order_saga.py start order-1 Lisbon      # reserved, charged, shipped
    python examples/order_saga.py start order-2 Atlantis    # no courier: refunded, released
    python examples/order_saga.py status order-2

Every step and every compensation has a reconciler that asks the ledger (standing for the
warehouse and the payment provider) whether it happened, so `kill -9` of the worker at any
point still charges, refunds, reserves and releases each order at most once.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from durable import DurableBackend, NotApplied, make_durable, step
from durable.stores import store_from_url

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("SAGA_STORE", "sqlite:///saga.db")
LEDGER = Path(os.environ.get("SAGA_LEDGER", "saga-ledger.jsonl"))
COURIERS = {"Lisbon", "Porto"}


class OrderFailed(Exception):
    """A step that cannot succeed: the saga undoes what it did so far."""


def ledger() -> list[dict]:
    lines = LEDGER.read_text(encoding="utf-8").splitlines() if LEDGER.exists() else []
    return [json.loads(line) for line in lines]


def effect(kind: str, order_id: str) -> str:
    """Do the side effect `kind` for the order (one fsynced ledger line); its receipt."""
    with LEDGER.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"kind": kind, "order": order_id}) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return f"{kind}-{order_id}"


def recorded(kind: str):
    """A reconciler for the step doing `kind`: its receipt if the ledger has it, else the
    step never took effect (NotApplied) and runs."""

    def reconcile(order_id: str, *_) -> str:
        if any(e["kind"] == kind and e["order"] == order_id for e in ledger()):
            return f"{kind}-{order_id}"
        raise NotApplied

    return reconcile


@step(reconciler=recorded("reserve"))
def reserve_stock(order_id: str, items: dict[str, int]) -> str:
    return effect("reserve", order_id)


@step(reconciler=recorded("charge"))
def charge_card(order_id: str, amount: float) -> str:
    return effect("charge", order_id)


@step(reconciler=recorded("ship"))
def ship(order_id: str, city: str) -> str:
    if city not in COURIERS:
        raise OrderFailed(f"no courier delivers to {city}")
    return effect("ship", order_id)


@step(reconciler=recorded("refund"))
def refund_card(order_id: str, charge: str) -> str:
    return effect("refund", order_id)


@step(reconciler=recorded("release"))
def release_stock(order_id: str, reservation: str) -> str:
    return effect("release", order_id)


@make_durable
async def place_order(order_id: str, items: dict[str, int], city: str) -> dict:
    undo = []  # the compensation of each step done so far
    try:
        reservation = await reserve_stock(order_id, items)
        undo.append((release_stock, reservation))
        charge = await charge_card(order_id, 12.5 * sum(items.values()))
        undo.append((refund_card, charge))
        tracking = await ship(order_id, city)
    except OrderFailed as failure:
        undone = [await compensate(order_id, receipt) for compensate, receipt in reversed(undo)]
        return {"order": order_id, "status": "cancelled", "why": str(failure), "undone": undone}
    return {"order": order_id, "status": "shipped", "tracking": tracking}


def backend() -> DurableBackend:
    return DurableBackend(store_from_url(STORE_URL))


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("order_saga").place_order


async def start(order_id: str, city: str) -> None:
    await workflow().start(order_id, {"book": 2}, city, instance_id=order_id,
                           orchestration_backend=backend())  # fmt: skip
    print(f"{order_id}: placed, to {city}")


async def status(order_id: str, wait: float | None = None) -> None:
    handle = workflow().handle(order_id, orchestration_backend=backend())
    if wait is None:
        print(f"{order_id}: {handle.status()}")
    else:
        print(f"{order_id}: {await handle.result(timeout=wait)}")


async def demo() -> None:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", STORE_URL, "order_saga"],
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.DEVNULL,
    )
    try:
        for order_id, city in (("order-1", "Lisbon"), ("order-2", "Atlantis")):
            await start(order_id, city)
            await status(order_id, wait=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main(argv: list[str]) -> None:
    if argv == ["demo"]:
        asyncio.run(demo())
    elif len(argv) == 3 and argv[0] == "start":
        asyncio.run(start(argv[1], argv[2]))
    elif len(argv) == 2 and argv[0] == "status":
        asyncio.run(status(argv[1]))
    else:
        sys.exit("usage: python examples/order_saga.py demo | start ORDER CITY | status ORDER")


if __name__ == "__main__":
    main(sys.argv[1:])
