"""The README's examples run verbatim and print what the docs say."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable import DurableBackend, InstanceHandle, SQLiteStateStore

#: Processes, crashes at every write, generated programs: left out of the fast subset.
pytestmark = pytest.mark.slow

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


# -- the approval example: a worker, a person approving later, kill -9 anywhere ----------------
APPROVAL = ROOT / "examples" / "approval.py"


def approval_env(
    tmp_path: Path, fault: str | None = None, cooling_off: float = 0.3
) -> dict[str, str]:
    env = {
        **os.environ,
        "APPROVAL_COOLING_OFF": str(cooling_off),
        "APPROVAL_STORE": f"sqlite:///{tmp_path / 'approval.db'}",
        "APPROVAL_LEDGER": str(tmp_path / "ledger.jsonl"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "examples"), str(ROOT)]),
    }
    env.pop("DURABLE_FAULT", None)
    if fault:
        env["DURABLE_FAULT"] = fault
    return env


def approval(tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(APPROVAL), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=approval_env(tmp_path),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def approval_worker(
    tmp_path: Path, fault: str | None = None, cooling_off: float = 0.3
) -> subprocess.Popen:
    store = f"sqlite:///{tmp_path / 'approval.db'}"
    return subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", store, "--max-poll", "0.1",
         "approval"],
        env=approval_env(tmp_path, fault, cooling_off),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def ledger_kinds(tmp_path: Path) -> list[str]:
    path = tmp_path / "ledger.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["kind"] for line in lines]


def stored_status(tmp_path: Path, request: str) -> str | None:
    """The request's status read from its store here (the example's own `status` command,
    a process each time, is tested once; polling with it costs a second a poll)."""
    store = SQLiteStateStore(tmp_path / "approval.db")
    try:
        return InstanceHandle(request, DurableBackend(store)).status()
    finally:
        store.close()


def timers(tmp_path: Path) -> list[dict]:
    """The history rows of REQ-7's durable timers."""
    backend = DurableBackend(SQLiteStateStore(tmp_path / "approval.db"))
    return [row for row in InstanceHandle("REQ-7", backend).history() if row["kind"] == "timer"]


def timer_started(tmp_path: Path) -> float:
    return timers(tmp_path)[0]["started_at"]


def wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_approval_demo_prints_the_request_its_approval_and_its_outcome(tmp_path):
    lines = approval(tmp_path, "demo").splitlines()
    assert lines[:2] == ["REQ-1: started, waiting for approval", "REQ-1: approved by ada"]
    assert lines[2].startswith("REQ-1: done -> {'request': 'REQ-1', 'amount': 120.0")
    assert "'approved_by': 'ada', 'notification': 'mail-REQ-1'" in lines[2]
    assert ledger_kinds(tmp_path) == ["reservation", "notification"]


def test_approval_survives_kill_9_of_the_worker_while_waiting_and_while_sleeping(tmp_path):
    worker = approval_worker(tmp_path)
    try:
        assert (
            approval(tmp_path, "start", "REQ-7", "120") == "REQ-7: started, waiting for approval\n"
        )
        wait_until(lambda: stored_status(tmp_path, "REQ-7") == "waiting")
        worker.kill()  # SIGKILL while the request waits for its approval
        worker.wait(timeout=30)
        approval(tmp_path, "approve", "REQ-7", "ada")
        # A 5 s cooling-off timer, so the SIGKILL surely lands while the worker sleeps.
        worker = approval_worker(tmp_path, cooling_off=5.0)
        # Parked in the store while the timer runs: the worker holds nothing for it.
        wait_until(lambda: stored_status(tmp_path, "REQ-7") == "sleeping")
        time.sleep(max(0.0, timer_started(tmp_path) + 2.0 - time.time()))  # well into it
        killed_at = time.time()
        worker.kill()
        worker.wait(timeout=30)
        assert approval(tmp_path, "status", "REQ-7") == "REQ-7: sleeping\n"
        worker = approval_worker(tmp_path, cooling_off=5.0)
        wait_until(lambda: stored_status(tmp_path, "REQ-7") == "completed")
        # One timer, its deadline journaled before the kill: the resumed instance slept
        # what was left of it, not a new timer (how long the restarted worker took to start
        # is the machine's, so no wall-clock bound here).
        sleeps = timers(tmp_path)
        assert len(sleeps) == 1, sleeps
        assert sleeps[0]["started_at"] < killed_at
    finally:
        worker.kill()
        worker.wait(timeout=30)
    assert ledger_kinds(tmp_path) == ["reservation", "notification"]


@pytest.mark.parametrize("kind", ["before", "after", "torn"])
def test_approval_finishes_once_whichever_write_of_the_worker_is_cut_by_kill_9(tmp_path, kind):
    # The approval arrives first; the worker then writes: the reservation, the event consumed,
    # the timer, the notification (PENDING, then its receipt) and the outcome. Each run starts
    # from a copy of one store where the request was started and approved.
    started = tmp_path / "started"
    started.mkdir()
    approval(started, "start", "REQ-9", "75")
    approval(started, "approve", "REQ-9", "grace")
    for write in range(1, 7):
        run_dir = tmp_path / f"{kind}-{write}"
        shutil.copytree(started, run_dir)
        crashing = approval_worker(run_dir, fault=f"{kind}:{write}")
        assert crashing.wait(timeout=60) == -signal.SIGKILL, f"{kind}:{write} never happened"
        worker = approval_worker(run_dir)
        try:
            wait_until(lambda d=run_dir: stored_status(d, "REQ-9") == "completed")
        finally:
            worker.kill()
            worker.wait(timeout=30)
        assert ledger_kinds(run_dir) == ["reservation", "notification"], f"{kind}:{write}"
