"""The systems the expense reports talk to: a budget and a payments service.

Here both are one JSON-lines file (``MYAPP_LEDGER``, default ``ledger.jsonl``), so that you can
see every reservation and payment that really happened, however often the worker was killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def _path() -> Path:
    return Path(os.environ.get("MYAPP_LEDGER", "ledger.jsonl"))


def entries() -> list[dict]:
    """Every line of the ledger, oldest first."""
    if not _path().exists():
        return []
    return [json.loads(line) for line in _path().read_text(encoding="utf-8").splitlines()]


def _append(entry: dict) -> None:
    with _path().open("a", encoding="utf-8") as ledger:
        ledger.write(json.dumps(entry) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())


def reserve(report_id: str, amount: float) -> str:
    """Hold `amount` of the budget for a report. Idempotent: the report id is the key."""
    if not any(e["kind"] == "reserve" and e["report"] == report_id for e in entries()):
        _append({"kind": "reserve", "report": report_id, "amount": amount})
    return f"hold-{report_id}"


def release(report_id: str) -> None:
    """Give a report's hold back to the budget (also idempotent)."""
    if not any(e["kind"] == "release" and e["report"] == report_id for e in entries()):
        _append({"kind": "release", "report": report_id})


def pay(report_id: str, employee: str, amount: float) -> str:
    """Send the money. Not idempotent: each call is one more payment."""
    receipt = f"payment-{report_id}"
    _append({"kind": "pay", "report": report_id, "to": employee, "amount": amount})
    return receipt


def find_payment(report_id: str) -> str | None:
    """The receipt of the report's payment, if one was made."""
    for entry in entries():
        if entry["kind"] == "pay" and entry["report"] == report_id:
            return f"payment-{report_id}"
    return None
