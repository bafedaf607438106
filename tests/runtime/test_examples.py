"""The README's examples run verbatim and print what the docs say."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_prints_the_three_documented_lines():
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == [
        "waiting for permission to greet",
        "paused for event allow",
        "hello Ada",
    ]


def test_order_pipeline_pauses_in_one_process_and_finishes_in_another(tmp_path):
    def run(command: str) -> list[str]:
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "order_pipeline.py"), command, "order-7"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "DURABLE_EXAMPLE_DIR": str(tmp_path / "state")},
        )
        return result.stdout.splitlines()

    assert run("start") == [
        "  reserving 1 x book",
        "  reserving 2 x pen",
        "order-7: reserved 2 item kinds; waiting for approval",
        "order-7: paused until event 'approve' arrives",
    ]
    assert run("start") == ["order-7: paused until event 'approve' arrives"]
    finished = run("approve")
    assert finished[:3] == [
        "  charging order-7: 15.00",
        "order-7: approved by ada; shipping",
        "order-7: releasing the order lock",
    ]
    assert "reservation-book-1" in finished[3] and "TRACK-ORDER-7" in finished[3]
    assert "receipt-order-7" in finished[3]
    assert len((tmp_path / "state" / "payments.jsonl").read_text().splitlines()) == 1


def test_order_pipeline_killed_after_charging_resumes_without_charging_twice(tmp_path):
    def run(command: str, fault: str | None = None) -> subprocess.CompletedProcess:
        env = {**os.environ, "DURABLE_EXAMPLE_DIR": str(tmp_path / "state")}
        env.pop("DURABLE_FAULT", None)
        if fault:
            env["DURABLE_FAULT"] = fault
        return subprocess.run(
            [sys.executable, str(ROOT / "examples" / "order_pipeline.py"), command, "order-7"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )

    assert run("start").returncode == 0
    # In the approving process: write 1 journals the event, 2 the charge as PENDING; the
    # charge happens; the process dies before write 3 would record its receipt.
    killed = run("approve", fault="before:3")
    assert killed.returncode == -9
    assert "  charging order-7: 15.00" in killed.stdout.splitlines()
    resumed = run("start")
    assert resumed.returncode == 0
    assert "charging" not in resumed.stdout
    assert "receipt-order-7" in resumed.stdout.splitlines()[-1]
    assert len((tmp_path / "state" / "payments.jsonl").read_text().splitlines()) == 1
