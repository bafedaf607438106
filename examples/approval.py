"""A purchase approval that survives crashes: a worker runs it, a person approves it later.

    python examples/approval.py demo                 # all of it, with a worker in a subprocess

or step by step, each command a new process (the state is in approval.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///approval.db approval
    python examples/approval.py start REQ-7 120      # waits for approval
    python examples/approval.py approve REQ-7 ada    # the worker resumes it mid-function
    python examples/approval.py status REQ-7

`kill -9` the worker at any point and start it again: the request finishes, the budget is
reserved once (an idempotent call) and the requester is notified once (the notification
has a reconciler that asks the notification ledger whether it was sent before the crash).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from durable import (  # noqa: E402
    DurableBackend,
    NotApplied,
    durable_execute,
    make_durable,
    sleep,
    step,
    wait_for_event,
)
from durable.stores import store_from_url  # noqa: E402

STORE_URL = os.environ.get("APPROVAL_STORE", "sqlite:///approval.db")
LEDGER = Path(os.environ.get("APPROVAL_LEDGER", "approval-ledger.jsonl"))
COOLING_OFF = float(os.environ.get("APPROVAL_COOLING_OFF", "0.3"))


def _append(entry: dict) -> None:
    with LEDGER.open("a", encoding="utf-8") as ledger:
        ledger.write(json.dumps(entry) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())


def _ledger() -> list[dict]:
    if not LEDGER.exists():
        return []
    return [json.loads(line) for line in LEDGER.read_text(encoding="utf-8").splitlines()]


def reserve_budget(request_id: str, amount: float) -> str:
    """A side effect journaled by durable_execute: once journaled, a resumed run does not
    repeat it. A crash between the reservation and its journal entry runs it again (at least
    once), so it takes the request id as an idempotency key, as a budget service would."""
    if not any(e["kind"] == "reservation" and e["request"] == request_id for e in _ledger()):
        _append({"kind": "reservation", "request": request_id, "amount": amount})
    return f"budget-{request_id}"


def notification_sent(request_id: str, approver: str) -> str:
    """The reconciler of `notify_requester`: was the notification sent before a crash?"""
    for entry in _ledger():
        if entry["kind"] == "notification" and entry["request"] == request_id:
            return entry["receipt"]
    raise NotApplied


@step(reconciler=notification_sent)
def notify_requester(request_id: str, approver: str) -> str:
    receipt = f"mail-{request_id}"
    _append({"kind": "notification", "request": request_id, "by": approver, "receipt": receipt})
    return receipt


@make_durable
async def request_approval(request_id: str, amount: float) -> dict:
    reservation = await durable_execute(reserve_budget, request_id, amount)
    decision = await wait_for_event("approve")
    await sleep(COOLING_OFF)  # a durable timer: a restart waits only what is left of it
    receipt = await notify_requester(request_id, decision["by"])
    return {
        "request": request_id,
        "amount": amount,
        "reservation": reservation,
        "approved_by": decision["by"],
        "notification": receipt,
    }


def backend() -> DurableBackend:
    return DurableBackend(store_from_url(STORE_URL))


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("approval").request_approval


def start_worker() -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", STORE_URL, "--max-poll", "0.2",
         "approval"],
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def start(request_id: str, amount: float) -> None:
    await workflow().start(request_id, amount, instance_id=request_id, orchestration_backend=backend())
    print(f"{request_id}: started, waiting for approval")


def approve(request_id: str, approver: str) -> None:
    backend().publish_event(request_id, "approve", {"by": approver})
    print(f"{request_id}: approved by {approver}")


async def status(request_id: str, wait: float | None = None) -> None:
    handle = workflow().handle(request_id, orchestration_backend=backend())
    if wait is not None:
        print(f"{request_id}: done -> {await handle.result(timeout=wait)}")
    else:
        print(f"{request_id}: {handle.status()}")


async def demo() -> None:
    worker = start_worker()
    try:
        await start("REQ-1", 120.0)
        approve("REQ-1", "ada")
        await status("REQ-1", wait=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main(argv: list[str]) -> None:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "demo" and not rest:
        asyncio.run(demo())
    elif command == "start" and len(rest) == 2:
        asyncio.run(start(rest[0], float(rest[1])))
    elif command == "approve" and len(rest) == 2:
        approve(*rest)
    elif command == "status" and len(rest) == 1:
        asyncio.run(status(rest[0]))
    else:
        sys.exit(
            "usage: python examples/approval.py demo | start REQUEST AMOUNT | "
            "approve REQUEST APPROVER | status REQUEST"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
