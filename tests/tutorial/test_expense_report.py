"""Tests of the tutorial's expense report in one process, over the in-memory store
(docs/testing.md shows this file)."""

import asyncio

import pytest
from myapp import flows, ledger

from durable import DurableBackend, InMemoryStateStore, PauseForEventException
from durable.worker import Worker

APPROVED = {"approved": True, "by": "grace"}


@pytest.fixture(autouse=True)
def no_cooling_off(monkeypatch):
    # Compiled code reads module globals live: the report's sleep takes 0 s in these tests.
    monkeypatch.setattr(flows, "PAYOUT_DELAY", 0)


async def test_a_report_waits_for_its_approval_then_pays_once():
    backend = DurableBackend(InMemoryStateStore())
    report = dict(orchestration_backend=backend, instance_id="exp-1")

    with pytest.raises(PauseForEventException) as paused:
        await flows.expense_report("exp-1", "ada", 120.0, **report)
    assert paused.value.event == "approval"
    assert [entry["kind"] for entry in ledger.entries()] == ["reserve"]

    backend.publish_event("exp-1", "approval", APPROVED)
    outcome = await flows.expense_report("exp-1", "ada", 120.0, **report)

    assert outcome["status"] == "paid"
    assert [entry["kind"] for entry in ledger.entries()] == ["reserve", "pay"]


async def test_a_rejected_report_releases_its_budget_and_pays_nothing():
    backend = DurableBackend(InMemoryStateStore())
    backend.publish_event("exp-2", "approval", {"approved": False, "by": "grace"})

    outcome = await flows.expense_report(
        "exp-2", "alan", 900.0, orchestration_backend=backend, instance_id="exp-2"
    )

    assert outcome == {"report": "exp-2", "status": "rejected", "by": "grace"}
    assert [entry["kind"] for entry in ledger.entries()] == ["reserve", "release"]


async def test_a_worker_runs_a_started_report_to_its_end():
    backend = DurableBackend(InMemoryStateStore())
    stop = asyncio.Event()
    worker = asyncio.create_task(Worker(backend, min_poll=0.01, max_poll=0.05).run(stop))
    try:
        handle = await flows.expense_report.start(
            "exp-3", "ada", 50.0, instance_id="exp-3", orchestration_backend=backend
        )
        backend.publish_event("exp-3", "approval", APPROVED)
        outcome = await handle.result(timeout=10)
    finally:
        stop.set()
        await worker
    assert outcome["receipt"] == "payment-exp-3"
