"""The durable functions of the tutorial's app: an expense report, from submission to payment.

The worker imports this module by name (``durable worker ... myapp.flows``), which registers
`expense_report` under the key ``myapp.flows:expense_report``.
"""

from __future__ import annotations

import os

from durable import NotApplied, make_durable, sleep, step, wait_for_event

from . import ledger

#: Seconds between an approval and the payment, so a manager can still change their mind.
PAYOUT_DELAY = float(os.environ.get("MYAPP_PAYOUT_DELAY", "30"))


@step
def reserve_budget(report_id: str, amount: float) -> str:
    return ledger.reserve(report_id, amount)


@step
def release_budget(report_id: str) -> None:
    ledger.release(report_id)


def payment_made(report_id: str, employee: str, amount: float) -> str:
    """Asked instead of paying again when a crash hit while `pay` was running."""
    receipt = ledger.find_payment(report_id)
    if receipt is None:
        raise NotApplied
    return receipt


@step(reconciler=payment_made)
def pay(report_id: str, employee: str, amount: float) -> str:
    return ledger.pay(report_id, employee, amount)


@make_durable
async def expense_report(report_id: str, employee: str, amount: float) -> dict:
    hold = await reserve_budget(report_id, amount)
    decision = await wait_for_event("approval")
    if not decision["approved"]:
        await release_budget(report_id)
        return {"report": report_id, "status": "rejected", "by": decision["by"]}
    await sleep(PAYOUT_DELAY)
    receipt = await pay(report_id, employee, amount)
    return {"report": report_id, "status": "paid", "hold": hold, "receipt": receipt}
