"""The cookbook examples run, survive SIGKILL of the process running them, and keep their
side effects to what the contract says (journaled results are never produced again)."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import libfaketime
import pytest

from durable import DurableBackend, InstanceHandle, SQLiteStateStore

#: Every test starts worker processes and kills them.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
sys.path.insert(0, str(EXAMPLES))


def example_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    env = {**os.environ, **variables}
    env["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES), str(ROOT)])
    env.pop("DURABLE_FAULT", None)
    return env


def run_example(tmp_path: Path, name: str, *args: str, env: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def worker(
    tmp_path: Path, module: str, env: dict[str, str], fault: str | None = None, **extra: str
) -> subprocess.Popen:
    """`durable worker` over the test's database, as the examples' docstrings run it."""
    env = {**env, **extra}
    if fault:
        env["DURABLE_FAULT"] = fault
    store = f"sqlite:///{tmp_path / 'store.db'}"
    return subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", store, "--max-poll", "0.1",
         module],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    # A process under libfaketime keeps a shared-memory segment that only its exit removes.
    for segment in (f"faketime_shm_{process.pid}", f"sem.faketime_sem_{process.pid}"):
        Path("/dev/shm", segment).unlink(missing_ok=True)


def backend(tmp_path: Path) -> DurableBackend:
    return DurableBackend(SQLiteStateStore(tmp_path / "store.db"))


def status(tmp_path: Path, instance_id: str) -> str | None:
    return InstanceHandle(instance_id, backend(tmp_path)).status()


def wait_until(condition, timeout: float = 20, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def finish_with_worker(tmp_path: Path, module: str, env: dict[str, str], instance_id: str):
    """Run a worker until `instance_id` ends; its result."""
    running = worker(tmp_path, module, env)
    try:
        wait_until(lambda: status(tmp_path, instance_id) in ("completed", "failed"), what="end")
    finally:
        kill(running)
    handle = InstanceHandle(instance_id, backend(tmp_path))
    return asyncio.run(handle.result(timeout=1))


def killed_at(tmp_path: Path, module: str, env_for, start, instance_id: str, faults, at_crash):
    """For each fault point (``before:K``, ``after:K``), in a fresh directory: `start(run_dir)`,
    a worker that SIGKILLs itself at that store write (`DURABLE_FAULT`), `at_crash(fault,
    run_dir)` (asserting what the crash left), then a worker that finishes the instance;
    yields (fault, run directory, result)."""
    for fault in faults:
        run_dir = tmp_path / fault.replace(":", "-")
        run_dir.mkdir()
        env = env_for(run_dir)
        start(run_dir)
        crashing = worker(run_dir, module, env, fault=fault)
        try:
            assert crashing.wait(timeout=60) == -signal.SIGKILL, f"{fault} was never reached"
        finally:
            if crashing.poll() is None:
                kill(crashing)
        at_crash(fault, run_dir)
        yield fault, run_dir, finish_with_worker(run_dir, module, env, instance_id)


def jsonl(path: Path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


# -- agent_loop: model turns and tools journaled, a booking approved by a person -------------
def agent_env(tmp_path: Path) -> dict[str, str]:
    return example_env(
        tmp_path,
        AGENT_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        AGENT_LEDGER=str(tmp_path / "ledger.jsonl"),
    )


def agent_effects(tmp_path: Path) -> list[str]:
    return [entry["kind"] for entry in jsonl(tmp_path / "ledger.jsonl")]


AGENT_EFFECTS = ["model", "search", "model", "booking", "model"]


def test_agent_demo_searches_waits_for_approval_and_books_the_cheapest_flight(tmp_path):
    lines = run_example(tmp_path, "agent_loop", "demo", env=agent_env(tmp_path))
    assert lines == [
        "trip-1: started",
        "trip-1: waiting for approval to book",
        "trip-1: approved by ada",
        "trip-1: Done: booked FR7",
    ]
    assert agent_effects(tmp_path) == AGENT_EFFECTS


def test_agent_killed_while_waiting_for_approval_books_after_the_approval(tmp_path):
    env = agent_env(tmp_path)
    run_example(tmp_path, "agent_loop", "start", "trip-2", "fly me to Lisbon", env=env)
    running = worker(tmp_path, "agent_loop", env)
    try:
        wait_until(lambda: status(tmp_path, "trip-2") == "waiting", what="the approval wait")
    finally:
        kill(running)
    assert agent_effects(tmp_path) == ["model", "search", "model"]
    run_example(tmp_path, "agent_loop", "approve", "trip-2", "ada", env=env)
    assert finish_with_worker(tmp_path, "agent_loop", env, "trip-2") == "Done: booked FR7"
    assert agent_effects(tmp_path) == AGENT_EFFECTS


def test_agent_refused_by_the_approver_answers_without_booking(tmp_path):
    env = agent_env(tmp_path)
    run_example(tmp_path, "agent_loop", "start", "trip-3", "fly me to Lisbon", env=env)
    run_example(tmp_path, "agent_loop", "refuse", "trip-3", "ada", env=env)
    assert finish_with_worker(tmp_path, "agent_loop", env, "trip-3") == "Done: refused"
    assert agent_effects(tmp_path) == ["model", "search", "model", "model"]


def test_agent_killed_after_any_worker_write_asks_each_turn_once_and_books_once(tmp_path):
    agent = importlib.import_module("agent_loop").agent

    def start(run_dir: Path) -> None:
        asyncio.run(agent.start("fly", instance_id="trip", orchestration_backend=backend(run_dir)))
        backend(run_dir).publish_event("trip", "approval", {"approved": True, "by": "ada"})

    # The approval is there from the start, so one worker run does all of it: a write per
    # model turn and search, one for the approval consumed, two for the booking (PENDING,
    # then done) and the outcome (8). SIGKILL right after the search, a model turn, the
    # approval or the booking: none of them is asked, consumed or made again.
    writes = ["model", "search", "model", "approval", "booking PENDING", "booking", "model"]

    def at_crash(fault: str, run_dir: Path) -> None:
        done = writes[: int(fault.split(":")[1])]
        assert agent_effects(run_dir) == [w for w in done if w in AGENT_EFFECTS], fault

    faults = [f"after:{k}" for k in (2, 3, 4, 6, 7)]
    runs = killed_at(tmp_path, "agent_loop", agent_env, start, "trip", faults, at_crash)
    for fault, run_dir, result in runs:
        assert result == "Done: booked FR7", fault
        assert agent_effects(run_dir) == AGENT_EFFECTS, fault


# -- order_saga: compensation in reverse order, every effect reconciled ----------------------
def saga_env(tmp_path: Path) -> dict[str, str]:
    return example_env(
        tmp_path,
        SAGA_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        SAGA_LEDGER=str(tmp_path / "ledger.jsonl"),
    )


def saga_effects(tmp_path: Path) -> list[str]:
    return [entry["kind"] for entry in jsonl(tmp_path / "ledger.jsonl")]


def test_saga_demo_ships_one_order_and_undoes_the_other_in_reverse_order(tmp_path):
    lines = run_example(tmp_path, "order_saga", "demo", env=saga_env(tmp_path))
    assert lines == [
        "order-1: placed, to Lisbon",
        "order-1: {'order': 'order-1', 'status': 'shipped', 'tracking': 'ship-order-1'}",
        "order-2: placed, to Atlantis",
        "order-2: {'order': 'order-2', 'status': 'cancelled', 'why': 'no courier delivers to "
        "Atlantis', 'undone': ['refund-order-2', 'release-order-2']}",
    ]
    assert saga_effects(tmp_path) == ["reserve", "charge", "ship", "reserve", "charge"] + [
        "refund",
        "release",
    ]


def start_saga(run_dir: Path) -> None:
    saga = importlib.import_module("order_saga").place_order
    saga_run = saga.start("order-9", {"book": 2}, "Atlantis", instance_id="order-9",
                          orchestration_backend=backend(run_dir))  # fmt: skip
    asyncio.run(saga_run)


def assert_cancelled_once(fault: str, run_dir: Path, result: dict) -> None:
    assert result["status"] == "cancelled", fault
    assert result["undone"] == ["refund-order-9", "release-order-9"], fault
    assert saga_effects(run_dir) == ["reserve", "charge", "refund", "release"], fault


SAGA_STEPS = ["reserve", "charge", "ship", "refund", "release"]  # ship fails, no effect


def saga_at_crash(fault: str, run_dir: Path) -> None:
    """Each step writes PENDING (write 2i-1), runs, then writes its outcome (2i): killed
    before 2i, step i ran; killed after 2i-1, it did not. Either way its entry is PENDING."""
    kind, k = fault.split(":")
    step = (int(k) + 1) // 2
    ran = SAGA_STEPS[: step if kind == "before" else step - 1]
    assert saga_effects(run_dir) == [s for s in ran if s != "ship"], fault
    last = InstanceHandle("order-9", backend(run_dir)).history()[-1]
    assert last["function"].startswith(f"order_saga.{SAGA_STEPS[step - 1]}"), fault
    assert last["status"] == "PENDING", fault


def test_saga_killed_after_a_step_took_effect_reconciles_it_instead_of_repeating_it(tmp_path):
    # The reconciler finds the effect in the ledger: the step does not run again.
    faults = [f"before:{2 * step}" for step in range(1, 6)]
    runs = killed_at(tmp_path, "order_saga", saga_env, start_saga, "order-9", faults, saga_at_crash)
    for run in runs:
        assert_cancelled_once(*run)


def test_saga_killed_before_a_step_ran_runs_it_once_when_resumed(tmp_path):
    # The reconciler finds nothing (NotApplied): the step runs.
    faults = [f"after:{2 * step - 1}" for step in range(1, 6)]
    runs = killed_at(tmp_path, "order_saga", saga_env, start_saga, "order-9", faults, saga_at_crash)
    for run in runs:
        assert_cancelled_once(*run)


# -- fan_out: gather over a flaky step, retried with backoff ---------------------------------
def fan_out_env(tmp_path: Path, backoff: float = 0.5) -> dict[str, str]:
    return example_env(
        tmp_path,
        FAN_OUT_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        FAN_OUT_SERVICE=str(tmp_path / "service.db"),
        FAN_OUT_BACKOFF=str(backoff),
    )


def service_books(tmp_path: Path) -> tuple[dict[str, int], list[tuple]]:
    with closing(sqlite3.connect(tmp_path / "service.db")) as db:
        attempts = dict(db.execute("SELECT photo, count FROM attempts ORDER BY photo"))
        albums = db.execute("SELECT album, photos FROM albums").fetchall()
    return attempts, albums


ALBUM = {
    "album": "summer",
    "thumbnails": ["thumb-a.jpg", "thumb-b.jpg", "thumb-c.jpg"],
    "link": "https://photos.example/summer",
}


def test_fan_out_demo_retries_each_photo_once_and_publishes_the_album(tmp_path):
    lines = run_example(tmp_path, "fan_out", "demo", env=fan_out_env(tmp_path))
    assert lines == [
        "summer: started, 3 photos",
        f"summer: {ALBUM}",
        "summer: attempts per photo {'a.jpg': 2, 'b.jpg': 2, 'c.jpg': 2}",
    ]


def test_fan_out_killed_while_backing_off_neither_repeats_an_attempt_nor_publishes_twice(
    tmp_path,
):
    env = fan_out_env(tmp_path, backoff=4.0)  # long enough for the kill to land in the wait
    run_example(tmp_path, "fan_out", "start", "summer", "a.jpg", "b.jpg", "c.jpg", env=env)
    running = worker(tmp_path, "fan_out", env)
    handle = InstanceHandle("summer", backend(tmp_path))

    def every_first_attempt_journaled() -> bool:
        calls = handle.history()
        return len(calls) == 3 and all(call["attempts"] == 1 for call in calls)

    try:
        wait_until(every_first_attempt_journaled, what="three failed attempts journaled")
    finally:
        kill(running)
    assert service_books(tmp_path) == ({"a.jpg": 1, "b.jpg": 1, "c.jpg": 1}, [])
    assert status(tmp_path, "summer") == "running"
    time.sleep(1)  # down for a second of the 4 s wait
    assert finish_with_worker(tmp_path, "fan_out", env, "summer") == ALBUM
    assert service_books(tmp_path) == ({"a.jpg": 2, "b.jpg": 2, "c.jpg": 2}, [("summer", 3)])
    # Each retry came 4 s (with 10 % jitter) after its first attempt: not at the restart
    # (the time of the next attempt was journaled), and not 4 s after the restart either.
    for call in handle.history()[:3]:
        assert 3.5 <= call["ended_at"] - call["started_at"] < 5.0, call


# -- reminder: a week-long durable sleep ------------------------------------------------------
def reminder_env(tmp_path: Path) -> dict[str, str]:
    return example_env(
        tmp_path,
        REMINDER_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        REMINDER_OUTBOX=str(tmp_path / "outbox.jsonl"),
    )


def days_later(days: int) -> dict[str, str]:
    """The environment of a process whose clock reads `days` days ahead of the machine's:
    libfaketime, preloaded, shifts what the C library reports as the time of day (the
    monotonic clock, which asyncio sleeps on, is left alone)."""
    _, variables = libfaketime.get_reload_information()
    return {**variables, "FAKETIME": f"+{days}d"}


def sent(tmp_path: Path) -> list[str]:
    return [message["text"] for message in jsonl(tmp_path / "outbox.jsonl")]


def test_reminder_demo_confirms_then_reminds_after_its_timer(tmp_path):
    lines = run_example(tmp_path, "reminder", "demo", env=reminder_env(tmp_path))
    assert lines == [
        "r-1: ada is reminded to renew the passport in 2 s",
        "r-1: sent to ada",
        "outbox: ada: I will remind you: renew the passport",
        "outbox: ada: Reminder: renew the passport",
    ]


def test_reminder_a_week_away_is_sent_once_by_a_worker_started_after_the_week(tmp_path):
    env = reminder_env(tmp_path)
    run_example(tmp_path, "reminder", "start", "r-7", "ada", "renew the passport", env=env)
    running = worker(tmp_path, "reminder", env)
    try:
        wait_until(lambda: status(tmp_path, "r-7") == "sleeping", what="the week's sleep")
    finally:
        kill(running)
    assert sent(tmp_path) == ["I will remind you: renew the passport"]
    # Six days on, the reminder is not due: a worker leaves it parked.
    early = worker(tmp_path, "reminder", env, **days_later(6))
    try:
        time.sleep(1.5)
        assert early.poll() is None
        assert status(tmp_path, "r-7") == "sleeping"
    finally:
        kill(early)
    # A week on, it is: the journaled deadline has passed (a timer started again on resume
    # would park it for another week).
    assert finish_with_worker(tmp_path, "reminder", {**env, **days_later(7)}, "r-7") == (
        "sent to ada"
    )
    assert sent(tmp_path) == [
        "I will remind you: renew the passport",
        "Reminder: renew the passport",
    ]


# -- web_app: HTTP handlers start and approve, a worker process runs -------------------------
def web_env(tmp_path: Path) -> dict[str, str]:
    return example_env(
        tmp_path,
        WEB_APP_STORE=f"sqlite:///{tmp_path / 'store.db'}",
        WEB_APP_LEDGER=str(tmp_path / "payments.jsonl"),
    )


@pytest.fixture
def web_server(tmp_path):
    """The example's HTTP server, on a free port; its base URL."""
    server = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "web_app.py"), "serve", "0"],
        env=web_env(tmp_path),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        kill(server)
        server.stdout.close()


def http(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, method=method)) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_web_app_demo_starts_approves_and_completes_a_request(tmp_path):
    lines = run_example(tmp_path, "web_app", "demo", env=web_env(tmp_path))
    assert lines[:2] == ["started: enqueued", "approved by: ada"]
    assert lines[2].startswith(
        "done: {'amount': 120.0, 'approved_by': 'ada', 'receipt': 'paid-req-"
    )
    assert len(jsonl(tmp_path / "payments.jsonl")) == 1


def test_web_app_request_survives_kills_of_its_worker_while_waiting_and_while_paying(
    tmp_path, web_server
):
    env = web_env(tmp_path)
    code, created = http("POST", f"{web_server}/requests", {"amount": 120})
    assert code == 201
    request = f"{web_server}/requests/{created['id']}"
    running = worker(tmp_path, "web_app", env)
    try:
        wait_until(lambda: http("GET", request)[1]["status"] == "waiting", what="waiting")
    finally:
        kill(running)  # SIGKILL while the request waits for its approval
    assert http("POST", f"{request}/approve", {"by": "ada"}) == (
        202,
        {"id": created["id"], "approved_by": "ada"},
    )
    # The next worker's writes: 1 the approval consumed, 2 the payment PENDING, 3 its
    # receipt. Killed before 3: the payment went out, its receipt is not journaled.
    crashing = worker(tmp_path, "web_app", env, fault="before:3")
    assert crashing.wait(timeout=60) == -signal.SIGKILL
    assert len(jsonl(tmp_path / "payments.jsonl")) == 1
    last = InstanceHandle(created["id"], backend(tmp_path)).history()[-1]
    assert (last["function"], last["status"]) == ("web_app.pay", "PENDING")
    assert http("GET", request)[1]["status"] == "running"
    running = worker(tmp_path, "web_app", env)
    try:
        wait_until(lambda: http("GET", request)[1]["status"] == "completed", what="completed")
    finally:
        kill(running)
    receipt = f"paid-{created['id']}"
    assert http("GET", request) == (
        200,
        {
            "id": created["id"],
            "status": "completed",
            "result": {"amount": 120.0, "approved_by": "ada", "receipt": receipt},
        },
    )
    assert jsonl(tmp_path / "payments.jsonl") == [
        {"request": created["id"], "amount": 120.0, "by": "ada"}
    ]


def test_web_app_answers_404_for_an_unknown_request_and_409_for_approving_a_finished_one(
    tmp_path, web_server
):
    code, answer = http("GET", f"{web_server}/requests/req-nope")
    assert (code, answer) == (404, {"error": "no request req-nope"})
    _, created = http("POST", f"{web_server}/requests", {"amount": 5})
    request = f"{web_server}/requests/{created['id']}"
    http("POST", f"{request}/approve", {"by": "ada"})
    assert finish_with_worker(tmp_path, "web_app", web_env(tmp_path), created["id"])
    code, answer = http("POST", f"{request}/approve", {"by": "bob"})
    assert (code, answer) == (409, {"error": f"request {created['id']} is already completed"})
    assert http("POST", f"{web_server}/requests", {"amount": "lots"})[0] == 400
