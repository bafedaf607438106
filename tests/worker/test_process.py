"""`python -m durable worker` as a real process: runs, events, SIGTERM, kill -9, the CLI."""

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

from durable import DiskStateStore, DurableBackend, SQLiteStateStore
from durable.cli import main
from durable.stores.url import store_from_url
from tests.worker import flows

#: Processes, crashes at every write, generated programs: left out of the fast subset.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DURABLE_STORE", "DURABLE_FAULT")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class WorkerProcess:
    """`python -m durable worker` in a child process, its output in a file."""

    def __init__(
        self, url: str, log: Path, *options: str, module: str = "tests.worker.flows"
    ) -> None:
        self.log = log
        self.output = log.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "durable",
                "worker",
                "--store",
                url,
                "--min-poll",
                "0.02",
                "--max-poll",
                "0.2",
                *options,
                module,
            ],
            cwd=ROOT,
            env=environment(),
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Send `signum` once the worker runs (before, the interpreter's defaults apply)."""
        deadline = time.monotonic() + 10
        while "worker started over" not in self.text():
            assert self.process.poll() is None, self.text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.01)
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self.output.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.wait()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "durable", *args],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


async def until(condition, timeout: float = 10.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture(params=["file", "sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "file":
        return f"file://{tmp_path / 'store'}", lambda: DiskStateStore(tmp_path / "store")
    if request.param == "postgres":
        # A lease of a killed worker lasts its length: a short one, so another takes over.
        url = request.getfixturevalue("postgres_url") + "&lease_seconds=1"
        return url, lambda: store_from_url(url)
    return f"sqlite:///{tmp_path / 'store.db'}", lambda: SQLiteStateStore(tmp_path / "store.db")


async def test_a_worker_process_runs_instances_started_elsewhere_and_stops_on_sigterm(
    tmp_path, store_url
):
    url, open_store = store_url
    backend = DurableBackend(open_store())
    ledger = str(tmp_path / "ledger")
    worker = WorkerProcess(url, tmp_path / "worker.log")
    try:
        handles = [
            await flows.record.start(
                ledger, name, instance_id=f"r-{name}", orchestration_backend=backend
            )
            for name in ("a", "b")
        ]
        approval = await flows.approval.start(
            "deploy", instance_id="ap-1", orchestration_backend=backend
        )
        assert [await h.result(timeout=10) for h in handles] == ["recorded a", "recorded b"]
        await until(lambda: approval.status() == "waiting", what="the approval to wait")
        status = cli("status", "--store", url, "ap-1")
        assert status.stdout.splitlines() == ["waiting", "waiting for event: 'approve'"]

        published = cli("publish", "--store", url, "ap-1", "approve", "--json", '{"by": "ops"}')
        assert published.stdout.strip() == "published event 'approve' to instance 'ap-1'"
        assert await approval.result(timeout=5) == "deploy approved by ops"
        status = cli("status", "--store", url, "ap-1")
        assert status.stdout.splitlines() == ["completed", "result: 'deploy approved by ops'"]

        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.text()
    finally:
        worker.stop()
    log = worker.text()
    assert "instance 'r-a' completed" in log
    assert "instance 'ap-1' paused, waiting for event 'approve'" in log
    assert "SIGTERM: shutting down" in log and "worker stopped" in log
    assert sorted(flows.lines(ledger)) == ["a", "b"]
    for instance_id in backend.store.list_instances():
        assert backend.read_state(instance_id)["status"] == "completed"


async def test_sigterm_lets_the_step_in_progress_finish_and_a_new_worker_resumes_after_it(
    tmp_path, store_url
):
    url, open_store = store_url
    backend = DurableBackend(open_store())
    started, release = tmp_path / "started", tmp_path / "release"
    ledger = str(tmp_path / "ledger")
    handle = await flows.two_steps.start(
        ledger, str(started), str(release), instance_id="s-1", orchestration_backend=backend
    )
    first = WorkerProcess(url, tmp_path / "first.log", "--grace", "10")
    try:
        await until(started.exists, what="the first step to start")
        first.signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert first.process.poll() is None  # waits for the step in progress
        release.touch()
        assert first.wait() == 0, first.text()
    finally:
        first.stop()
    assert "instance 's-1' stopped for shutdown" in first.text()
    assert handle.status() == "running"
    assert backend.acquire_instance("s-1") is None  # no lease left behind
    backend.release_instance("s-1")
    assert flows.lines(ledger) == []

    second = WorkerProcess(url, tmp_path / "second.log")
    try:
        assert await handle.result(timeout=10) == "released"
        second.signal(signal.SIGINT)
        assert second.wait() == 0, second.text()
    finally:
        second.stop()
    assert flows.lines(str(started)) == ["started"]  # the first step ran once
    assert flows.lines(ledger) == ["second"]


async def test_sigterm_abandons_a_long_sleep_after_the_grace_period(tmp_path, store_url):
    url, open_store = store_url
    backend = DurableBackend(open_store())
    ledger = str(tmp_path / "ledger")
    handle = await flows.nap.start(ledger, 60, instance_id="z-1", orchestration_backend=backend)
    # The nap sleeps in its run (not parked), so the shutdown has a run to abandon.
    worker = WorkerProcess(
        url, tmp_path / "worker.log", "--grace", "0.3", "--park-sleeps-after", "3600"
    )
    try:
        await until(lambda: len(flows.lines(ledger)) == 1, what="the nap to start")
        await asyncio.sleep(0.1)
        began = time.monotonic()
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.text()
        assert time.monotonic() - began < 3
    finally:
        worker.stop()
    assert "instance 'z-1' abandoned at shutdown" in worker.text()
    assert handle.status() == "running"
    assert backend.acquire_instance("z-1") is None
    backend.release_instance("z-1")


async def test_after_kill_9_a_new_worker_finishes_a_sleep_at_its_original_deadline(
    tmp_path, store_url
):
    url, open_store = store_url
    backend = DurableBackend(open_store())
    ledger = str(tmp_path / "ledger")
    handle = await flows.nap.start(ledger, 2.0, instance_id="n-1", orchestration_backend=backend)
    # Sleeping in its run (not parked), so the kill lands in the middle of a run.
    first = WorkerProcess(url, tmp_path / "first.log", "--park-sleeps-after", "3600")
    try:

        def timer():
            state = backend.read_state("n-1")
            journal = (state or {}).get("journal") or {}
            return next((e for e in journal.values() if e.get("kind") == "timer"), None)

        await until(lambda: timer() is not None, what="the timer to be journaled")
        deadline = timer()["deadline"]
        await asyncio.sleep(0.3)
        first.process.kill()
        first.wait()
    finally:
        first.stop()
    assert handle.status() == "running"

    second = WorkerProcess(url, tmp_path / "second.log")
    try:
        slept = await handle.result(timeout=10)
        second.signal(signal.SIGTERM)
        assert second.wait() == 0, second.text()
    finally:
        second.stop()
    assert (
        "'n-1' resumed from its last write (it was running: its runner stopped or died)"
        in second.text()
    )
    stamps = [line.split() for line in flows.lines(ledger)]
    assert [label for label, _ in stamps] == ["start", "end"]  # the first step ran once
    ended = float(stamps[1][1])
    # Restarted, the sleep would end 2 s after the second worker resumed it, well past this.
    assert deadline <= ended < deadline + 0.5, (deadline, ended)
    assert 2.0 <= slept < 2.5


async def test_two_workers_sharing_a_store_run_each_instance_once(tmp_path, store_url):
    url, open_store = store_url
    backend = DurableBackend(open_store())
    ledger = str(tmp_path / "ledger")
    names = [f"job{i}" for i in range(8)]
    workers = [WorkerProcess(url, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        handles = [
            await flows.record.start(ledger, name, instance_id=name, orchestration_backend=backend)
            for name in names
        ]
        for handle in handles:
            await handle.result(timeout=10)
        for worker in workers:
            worker.signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait() == 0, worker.text()
    finally:
        for worker in workers:
            worker.stop()
    assert sorted(flows.lines(ledger)) == names


def test_sigterm_while_the_modules_are_imported_stops_the_worker_cleanly(tmp_path):
    marker = tmp_path / "importing"
    (tmp_path / "slow_flows.py").write_text(
        f"import pathlib, time\npathlib.Path({str(marker)!r}).touch()\ntime.sleep(0.5)\n"
    )
    log = (tmp_path / "worker.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable",
            "worker",
            "--store",
            f"file://{tmp_path / 'store'}",
            "slow_flows",
        ],
        cwd=tmp_path,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 10
        while not marker.exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    text = (tmp_path / "worker.log").read_text()
    assert "SIGTERM: shutting down" in text and "worker stopped" in text


def test_the_worker_names_a_module_it_cannot_import(tmp_path):
    url = f"file://{tmp_path / 'store'}"
    missing = cli("worker", "--store", url, "tests.worker.no_such_flows", check=False)
    assert missing.returncode == 2
    assert "cannot import module 'tests.worker.no_such_flows'" in missing.stderr
    assert "No module named 'tests.worker.no_such_flows'" in missing.stderr

    (tmp_path / "bad_flows.py").write_text("import not_a_real_dependency\n")
    result = subprocess.run(
        [sys.executable, "-m", "durable", "worker", "--store", url, "bad_flows"],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert (
        "cannot import module 'bad_flows': ModuleNotFoundError: No module named "
        "'not_a_real_dependency'" in result.stderr
    )


def test_the_worker_refuses_a_bad_store_url_from_the_option_or_the_environment(tmp_path):
    bad = cli("worker", "--store", "s3://nowhere", "tests.worker.flows", check=False)
    assert bad.returncode == 2
    assert "unsupported store URL 's3://nowhere'" in bad.stderr
    unreachable = cli("worker", "--store", "postgres://nowhere", "tests.worker.flows", check=False)
    assert unreachable.returncode == 2
    assert "cannot connect to the PostgreSQL store" in unreachable.stderr
    malformed = cli("worker", "--store", "sqlite:///", "tests.worker.flows", check=False)
    assert malformed.returncode == 2
    assert "store URL 'sqlite:///': it names no database file" in malformed.stderr
    # A bad DURABLE_STORE is refused too, not replaced by the default store.
    result = subprocess.run(
        [sys.executable, "-m", "durable", "worker", "tests.worker.flows"],
        cwd=tmp_path,
        env={**environment(), "DURABLE_STORE": "redis://nowhere", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unsupported store URL 'redis://nowhere'" in result.stderr
    assert list(tmp_path.iterdir()) == []


async def test_without_a_store_the_worker_runs_durable_db_in_the_current_directory(tmp_path):
    log_path = tmp_path / "worker.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "durable",
            "worker",
            "--min-poll",
            "0.02",
            "--max-poll",
            "0.2",
            "tests.worker.flows",
        ],
        cwd=tmp_path,
        env={**environment(), "PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        await until(
            lambda: "worker started over" in log_path.read_text() or process.poll() is not None,
            what="the worker to start",
        )
        text = log_path.read_text()
        assert "worker started over SQLiteStateStore('durable.db')" in text, text
        assert "asking the store's index for due instances" in text
        assert (
            "no --store or DURABLE_STORE given: using the default store sqlite:///durable.db "
            f"({tmp_path / 'durable.db'})" in text
        )
        backend = DurableBackend(SQLiteStateStore(tmp_path / "durable.db"))
        handle = await flows.record.start(
            str(tmp_path / "ledger"), "a", instance_id="r-a", orchestration_backend=backend
        )
        assert await handle.result(timeout=10) == "recorded a"
        backend.store.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_publish_and_status_default_to_durable_db_in_the_current_directory(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DURABLE_STORE", raising=False)
    # They look or send, never create: a default store that does not exist is reported.
    for command in (["status", "p-1"], ["publish", "p-1", "go", "--before-start"]):
        assert main(command) == 1
        err = capsys.readouterr().err
        assert "the default store sqlite:///durable.db" in err and "does not exist" in err
    assert list(tmp_path.iterdir()) == []
    SQLiteStateStore(tmp_path / "durable.db").close()  # as the worker creates it
    assert main(["publish", "p-1", "go", "--before-start"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "published event 'go' to instance 'p-1'"
    assert "using the default store sqlite:///durable.db" in err
    events = DurableBackend(SQLiteStateStore(tmp_path / "durable.db")).pending_events("p-1")
    assert [e.name for e in events] == ["go"]
    assert main(["status", "p-1"]) == 1
    assert "no instance 'p-1' in SQLiteStateStore('durable.db')" in capsys.readouterr().err


def test_the_help_names_the_default_store():
    result = cli("worker", "--help")
    assert "sqlite:///durable.db" in " ".join(result.stdout.split())


def test_durable_store_names_the_default_store(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DURABLE_STORE", f"file://{tmp_path / 'store'}")
    DiskStateStore(tmp_path / "store")
    assert main(["publish", "p-1", "go", "--json", "[1, 2]", "--before-start"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "published event 'go' to instance 'p-1'"
    assert "does not exist yet" in err
    events = DurableBackend(DiskStateStore(tmp_path / "store")).pending_events("p-1")
    assert [(e.name, e.payload) for e in events] == [("go", [1, 2])]


def test_publish_and_status_report_bad_input(tmp_path, capsys):
    url = f"file://{tmp_path / 'store'}"
    DiskStateStore(tmp_path / "store")
    assert main(["publish", "--store", url, "p-1", "go", "--json", "{oops"]) == 2
    assert "--json '{oops' is not valid JSON" in capsys.readouterr().err
    assert main(["publish", "--store", url, "../etc", "go"]) == 2
    assert "invalid instance_id '../etc'" in capsys.readouterr().err
    assert main(["status", "--store", url, "../etc"]) == 2
    assert "invalid instance_id '../etc'" in capsys.readouterr().err
    assert main(["status", "--store", url, "nobody"]) == 1
    assert "no instance 'nobody'" in capsys.readouterr().err


async def test_status_shows_a_failure(tmp_path, capsys):
    url = f"file://{tmp_path / 'store'}"
    backend = DurableBackend(DiskStateStore(tmp_path / "store"))
    with pytest.raises(LookupError):
        await flows.broken("no stock", orchestration_backend=backend, instance_id="b-1")
    assert main(["status", "--store", url, "b-1"]) == 4
    assert capsys.readouterr().out.splitlines() == ["failed", "error: LookupError: no stock"]
    payload = json.dumps({"by": "x"})
    assert main(["publish", "--store", url, "b-1", "approve", "--json", payload]) == 5
    assert "instance 'b-1' has failed" in capsys.readouterr().err


@pytest.mark.parametrize("commit", ["group commit", "--no-group-commit"])
async def test_a_worker_runs_many_instances_over_sqlite_with_and_without_group_commit(
    tmp_path, commit
):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    backend = DurableBackend(SQLiteStateStore(tmp_path / "store.db"))
    ledger = str(tmp_path / "ledger")
    options = ["--concurrency", "16"] + ([commit] if commit.startswith("--") else [])
    worker = WorkerProcess(url, tmp_path / "worker.log", *options)
    try:
        handles = [
            await flows.record.start(
                ledger, f"n{n}", instance_id=f"r-{n}", orchestration_backend=backend
            )
            for n in range(12)
        ]
        assert [await h.result(timeout=20) for h in handles] == [
            f"recorded n{n}" for n in range(12)
        ]
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0, worker.text()
    finally:
        worker.stop()
    assert sorted(flows.lines(ledger)) == sorted(f"n{n}" for n in range(12))


def test_no_group_commit_applies_to_a_sqlite_store_only(tmp_path):
    result = cli(
        "worker", "--store", f"file://{tmp_path / 'store'}", "--no-group-commit",
        "tests.worker.flows", check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "--no-group-commit applies to a SQLite store" in result.stderr


@pytest.mark.parametrize("backlog", [400, 1500], ids=["within-the-index-limit", "past-it"])
async def test_a_killed_workers_running_instance_is_taken_over_before_the_backlog(
    tmp_path, backlog
):
    # The orphan's last write comes after the whole backlog was enqueued, so by the time of
    # their last writes every instance of the backlog is ahead of it; 1,500 is more than one
    # round asks the index for (DUE_LIMIT).
    url = f"sqlite:///{tmp_path / 'store.db'}"
    backend = DurableBackend(SQLiteStateStore(tmp_path / "store.db"))
    ledger = str(tmp_path / "ledger")
    first_started, first_release, then_started, then_release = (
        tmp_path / name for name in ("first-started", "first-release", "then-started", "then")
    )
    orphan = await flows.held_twice.start(
        ledger, *map(str, (first_started, first_release, then_started, then_release)),
        instance_id="orphan", orchestration_backend=backend,
    )  # fmt: skip
    first = WorkerProcess(url, tmp_path / "first.log", "--concurrency", "1")
    try:
        await until(first_started.exists, what="the orphan's first step to start")
        # Enqueued while the orphan holds the worker's one slot.
        for chunk in range(0, backlog, 100):
            await asyncio.gather(*(
                flows.record.start(
                    ledger, f"n{n}", instance_id=f"b-{n:05d}", orchestration_backend=backend
                )
                for n in range(chunk, min(chunk + 100, backlog))
            ))  # fmt: skip
        first_release.touch()
        await until(then_started.exists, what="the orphan's second step to start")
        first.process.kill()
        first.wait()
    finally:
        first.stop()
    assert orphan.status() == "running"
    assert flows.lines(ledger) == []

    then_release.touch()
    second = WorkerProcess(url, tmp_path / "second.log", "--concurrency", "4")
    try:
        assert await orphan.result(timeout=30) == "released twice"
        second.signal(signal.SIGTERM)
        assert second.wait() == 0, second.text()
    finally:
        second.stop()
    assert (
        "'orphan' resumed from its last write (it was running: its runner stopped or died)"
        in second.text()
    )
    finished_before = flows.lines(ledger).index("held twice")
    assert finished_before < backlog // 20, (finished_before, backlog)
