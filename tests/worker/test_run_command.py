"""`durable run MODULE:FUNCTION ARGS...`: an instance run to its end in one process, waiting
with it for events and timers, its result printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from durable import DurableBackend, SQLiteStateStore
from durable.cli import EXIT_FAILED, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[2]


def run(capsys, tmp_path, *arguments: str) -> tuple[int, str, str]:
    code = main(["run", "--store", f"sqlite:///{tmp_path / 'store.db'}", *arguments])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_prints_the_result_as_json(tmp_path, capsys):
    ledger = tmp_path / "ledger"
    code, out, err = run(
        capsys, tmp_path, "--id", "r-1", "tests.worker.flows:record", str(ledger), "a"
    )
    assert (code, out) == (0, '"recorded a"\n')
    assert "instance 'r-1'" in err and ledger.read_text() == "a\n"
    state = DurableBackend(SQLiteStateStore(tmp_path / "store.db")).read_state("r-1")
    assert state["status"] == "completed"


def test_run_sleeps_through_a_timer(tmp_path, capsys):
    ledger = tmp_path / "ledger"
    began = time.monotonic()
    code, out, _ = run(capsys, tmp_path, "tests.worker.flows:nap", str(ledger), "0.3")
    assert code == 0 and time.monotonic() - began >= 0.3
    assert isinstance(json.loads(out), float)


def test_run_of_a_failing_function_exits_4_naming_the_error(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path, "--id", "b-1", "tests.worker.flows:broken", "gone")
    assert code == EXIT_FAILED and "instance 'b-1' failed: LookupError: gone" in err


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.worker.flows", "expected MODULE:FUNCTION"),
        ("tests.worker.flows:nothing", "has no 'nothing'"),
        ("tests.worker.flows:append_line", "is not a durable function"),
    ],
)
def test_run_names_a_target_it_cannot_run(tmp_path, capsys, target, message):
    code, _, err = run(capsys, tmp_path, target)
    assert code == EXIT_USAGE and message in err


@pytest.mark.slow
def test_run_waits_for_an_event_published_from_another_process(tmp_path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    url = f"sqlite:///{tmp_path / 'store.db'}"
    running = subprocess.Popen(
        [sys.executable, "-m", "durable", "run", "--store", url, "--id", "a-1",
         "tests.worker.flows:approval", "req-1"],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while (
            not (tmp_path / "store.db").exists()
            or DurableBackend(SQLiteStateStore(tmp_path / "store.db")).read_state("a-1") is None
        ):
            assert time.monotonic() < deadline and running.poll() is None
            time.sleep(0.05)
        published = subprocess.run(
            [sys.executable, "-m", "durable", "publish", "--store", url, "a-1", "approve",
             "--json", '{"by": "ada"}'],
            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert published.returncode == 0, published.stderr
        out, err = running.communicate(timeout=30)
    finally:
        if running.poll() is None:
            running.kill()
    assert running.returncode == 0, err
    assert out == '"req-1 approved by ada"\n'
