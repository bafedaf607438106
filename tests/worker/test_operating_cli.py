"""The operating commands through the real `durable` entry point in a subprocess: history,
cancel, retry, fork, edit — and a kill -9 at their store write loses nothing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable import PauseForEventException

from . import operated

#: Every test runs the command line as processes: left out of the fast subset.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DURABLE = str(Path(sys.executable).parent / "durable")


def durable(*args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("DURABLE_STORE", "DURABLE_SECRET_KEY", "DURABLE_VERIFY_KEYS", "DURABLE_FAULT"):
        env.pop(name, None)
    if fault:
        env["DURABLE_FAULT"] = fault
    return subprocess.run(
        [DURABLE, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60
    )


async def finish(backend, ledger, instance_id="o"):
    return await operated.order(ledger, 5, orchestration_backend=backend, instance_id=instance_id)


# -- the commands -----------------------------------------------------------------------------
async def test_history_prints_every_operation_and_json_holds_the_same(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    backend.publish_event("o", "pay")
    await finish(backend, ledger)
    table = durable("history", "--store", url, "o")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "SEQ", "KIND", "FUNCTION", "STATUS", "ATTEMPTS", "STARTED", "TOOK", "ERROR"
    ]  # fmt: skip
    assert lines[1].split()[:5] == ["1", "call", "tests.worker.operated.note", "succeeded", "1"]
    assert lines[2].split()[:4] == ["2", "event", "wait_for_event('pay')", "succeeded"]
    rows = json.loads(durable("history", "--store", url, "--json", "o").stdout)
    assert [row["seq"] for row in rows] == [1, 2, 3]


async def test_cancel_stores_a_cancellation_the_next_run_delivers(stored, ledger):
    url, backend = stored
    with pytest.raises(PauseForEventException):
        await operated.cancellable(ledger, 1, orchestration_backend=backend, instance_id="c")
    done = durable("cancel", "--store", url, "c", "--reason", "by hand")
    assert done.returncode == 0, done.stderr
    assert "cancelling instance 'c' (waiting)" in done.stdout
    runner = stored.reopen()
    assert await operated.cancellable(ledger, 1, orchestration_backend=runner, instance_id="c") == (
        "cancelled"
    )
    assert operated.lines(ledger)[-2:] == ["cleanup by hand", "finally"]


async def test_cancel_of_a_completed_instance_exits_5(stored, ledger):
    url, backend = stored
    await operated.nap(ledger, 0, orchestration_backend=backend, instance_id="n")
    done = durable("cancel", "--store", url, "n")
    assert done.returncode == 5 and "completed already" in done.stderr


async def test_retry_fork_and_edit_need_a_key_or_unsafe_unpickle(stored, ledger):
    url, backend = stored
    await operated.failed_order(backend, ledger)
    for command in (["retry", "o"], ["fork", "o", "--new-id", "o2"], ["edit", "o", "--set", "a=1"]):
        done = durable(*command[:1], "--store", url, *command[1:])
        assert done.returncode == 2 and "--unsafe-unpickle" in done.stderr, done.stderr
    assert backend.read_state("o")["status"] == "failed"


async def test_retry_then_the_instance_finishes_without_repeating_earlier_calls(stored, ledger):
    url, backend = stored
    await operated.failed_order(backend, ledger)
    done = durable("retry", "--store", url, "--unsafe-unpickle", "o")
    assert done.returncode == 0, done.stderr
    assert "enqueued again; operation(s) 3 run again" in done.stdout
    assert await finish(stored.reopen(), ledger) == ("ship", 6)
    assert operated.lines(ledger) == ["ship", "charge 6", "charge 6"]


async def test_retry_of_a_waiting_instance_exits_7(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    done = durable("retry", "--store", url, "--unsafe-unpickle", "o")
    assert done.returncode == 7 and "only a failed instance is retried" in done.stderr


async def test_fork_makes_an_independent_instance(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    done = durable("fork", "--store", url, "--unsafe-unpickle", "o", "--new-id", "o2")
    assert done.returncode == 0, done.stderr
    runner = stored.reopen()
    runner.publish_event("o2", "pay")
    assert await finish(runner, ledger, "o2") == ("ship", 6)
    assert runner.read_state("o")["status"] == "waiting"


async def test_edit_sets_a_live_local_from_json_and_show_prints_it(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    done = durable("edit", "--store", url, "--unsafe-unpickle", "o", "--frame", "0",
                   "--set", "total=41")  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = durable("show", "--store", url, "o").stdout
    assert "      total = 41" in shown.splitlines()
    runner = stored.reopen()
    runner.publish_event("o", "pay")
    assert await finish(runner, ledger) == ("ship", 41)


async def test_edit_of_a_name_that_is_not_live_exits_2_naming_the_live_ones(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    done = durable("edit", "--store", url, "--unsafe-unpickle", "o", "--set", "nope=1")
    assert done.returncode == 2
    assert "'nope' is not live in frame 0" in done.stderr and "total" in done.stderr
    bad_json = durable("edit", "--store", url, "--unsafe-unpickle", "o", "--set", "total=abc")
    assert bad_json.returncode == 2 and "is not JSON" in bad_json.stderr


# -- kill -9 at the write of each change --------------------------------------------------------
@pytest.mark.parametrize("kind", ["before", "after", "torn"])
async def test_a_kill_9_during_retry_leaves_it_undone_or_done(stored, ledger, kind):
    url, backend = stored
    await operated.failed_order(backend, ledger)
    killed = durable("retry", "--store", url, "--unsafe-unpickle", "o", fault=f"{kind}:1")
    assert killed.returncode == -signal.SIGKILL
    stored.outlive_killed_leases()
    status = stored.reopen().read_state("o")["status"]
    assert status == ("enqueued" if kind == "after" else "failed")
    if status == "failed":
        assert durable("retry", "--store", url, "--unsafe-unpickle", "o").returncode == 0
    assert await finish(stored.reopen(), ledger) == ("ship", 6)


@pytest.mark.parametrize("kind", ["before", "after", "torn"])
async def test_a_kill_9_during_edit_leaves_the_old_value_or_the_new(stored, ledger, kind):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    edit = ("edit", "--store", url, "--unsafe-unpickle", "o", "--set", "total=41")
    assert durable(*edit, fault=f"{kind}:1").returncode == -signal.SIGKILL
    stored.outlive_killed_leases()
    runner = stored.reopen()
    (frame,) = operated.order.handle("o", orchestration_backend=runner).frames()
    assert frame.live_locals["total"] == (41 if kind == "after" else 6)
    runner.publish_event("o", "pay")
    assert await finish(runner, ledger) == ("ship", frame.live_locals["total"])


@pytest.mark.parametrize("kind", ["before", "after", "torn"])
async def test_a_kill_9_during_fork_leaves_no_fork_or_a_whole_one(stored, ledger, kind):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    fork = ("fork", "--store", url, "--unsafe-unpickle", "o", "--new-id", "o2")
    assert durable(*fork, fault=f"{kind}:1").returncode == -signal.SIGKILL
    stored.outlive_killed_leases()
    runner = stored.reopen()
    if kind != "after":
        assert runner.read_state("o2") is None
        assert durable(*fork).returncode == 0
        runner = stored.reopen()
    runner.publish_event("o2", "pay")
    assert await finish(runner, ledger, "o2") == ("ship", 6)
    assert runner.read_state("o")["status"] == "waiting"


@pytest.mark.parametrize("write", [1, 2, 3, 4])
async def test_a_worker_killed_while_delivering_a_cancellation_delivers_it_once(
    stored, ledger, tmp_path, write
):
    url, backend = stored
    with pytest.raises(PauseForEventException):
        await operated.cancellable(ledger, 1, orchestration_backend=backend, instance_id="c")
    assert durable("cancel", "--store", url, "c", "--reason", "now").returncode == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DURABLE_FAULT": f"after:{write}"}
    worker = [DURABLE, "worker", "--store", url, "--max-poll", "0.1", "tests.worker.operated"]
    crashed = subprocess.run(worker, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    env.pop("DURABLE_FAULT")
    finishing = subprocess.Popen(worker, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        handle = operated.cancellable.handle("c", orchestration_backend=stored.reopen())
        assert await handle.result(timeout=30) == "cancelled"
    finally:
        finishing.send_signal(signal.SIGTERM)
        finishing.wait(timeout=30)
    rows = handle.history()
    assert [row["kind"] for row in rows].count("cancel") == 1
    assert "cleanup now" in operated.lines(ledger) and "finally" in operated.lines(ledger)
    assert stored.reopen().pending_events("c") == []


async def test_a_worker_process_wakes_a_parked_sleeper_after_a_kill_9(stored, ledger):
    url, backend = stored
    handle = await operated.nap.start(ledger, 2.0, orchestration_backend=backend, instance_id="n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = [DURABLE, "worker", "--store", url, "--max-poll", "0.2", "tests.worker.operated"]
    first = subprocess.Popen(worker, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while handle.status() != "sleeping":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        wake_at = stored.reopen().read_state("n")["deadline"]
    finally:
        first.kill()
        first.wait(timeout=30)
    second = subprocess.Popen(worker, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        assert await handle.result(timeout=30) == "after"
        assert time.time() >= wake_at
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert operated.lines(ledger) == ["before", "after"]


async def test_status_of_a_sleeping_instance_says_when_it_wakes_up(stored, ledger):
    from durable.runtime.backend import runtime_for

    url, backend = stored
    runtime_for(backend).park_sleeps_after = 1.0
    with pytest.raises(PauseForEventException):
        await operated.nap(ledger, 600, orchestration_backend=backend, instance_id="n")
    shown = durable("status", "--store", url, "n")
    assert shown.returncode == 0, shown.stderr
    first, second = shown.stdout.splitlines()[:2]
    assert first == "sleeping" and second.startswith("wakes up: ")
    listed = json.loads(durable("list", "--store", url, "--json").stdout)
    assert listed[0]["status"] == "sleeping" and listed[0]["deadline"] > time.time() + 500


async def test_status_of_a_running_instance_names_its_runner_or_none(stored, ledger):
    url, backend = stored
    task = asyncio.ensure_future(
        operated.cancellable(ledger, 10_000, orchestration_backend=backend, instance_id="c")
    )
    try:
        while len(operated.lines(ledger)) < 2:
            await asyncio.sleep(0.02)
        shown = await asyncio.to_thread(durable, "status", "--store", url, "c")
        assert shown.stdout.splitlines()[1].startswith("runner: runner ")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_fork_at_an_earlier_operation_from_the_command_line(stored, ledger):
    url, backend = stored
    await operated.paused_order(backend, ledger)
    backend.publish_event("o", "pay")
    await finish(backend, ledger)
    done = durable("fork", "--store", url, "--unsafe-unpickle", "o", "--new-id", "o1", "--at", "1")
    assert done.returncode == 0, done.stderr
    runner = stored.reopen()
    with pytest.raises(PauseForEventException):
        await finish(runner, ledger, "o1")
    missing = durable("fork", "--store", url, "--unsafe-unpickle", "o", "--new-id", "o9",
                      "--at", "99")  # fmt: skip
    assert missing.returncode == 2 and "no snapshot taken at operation 99" in missing.stderr
