"""A program defined in a script is saved under the script's module name, so that a worker
importing that module runs the instances the script started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from durable import DurableBackend, IncompatibleStateError, SQLiteStateStore
from durable.runtime.catalog import program_for_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

AGENT = """
import asyncio, sys
from durable import DurableBackend, SQLiteStateStore, durable_execute, make_durable, wait_for_event

def fetch(job):
    return f"fetched {job}"

@make_durable
async def agent(job):
    page = await durable_execute(fetch, job)
    answer = await wait_for_event("answer")
    return f"{page}: {answer}"

if __name__ == "__main__":
    backend = DurableBackend(SQLiteStateStore("app.db"))
    asyncio.run(agent.start(sys.argv[2], orchestration_backend=backend, instance_id=sys.argv[2]))
    print(agent.key)
"""


def run(directory: Path, *command: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    environment["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, *command],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def worker_until_done(directory: Path, module: str, instance_id: str) -> str:
    """Run a worker over app.db importing `module` until `instance_id` ends; its log."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DURABLE_")}
    environment["PYTHONPATH"] = str(ROOT)
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", "sqlite:///app.db",
         "--min-poll", "0.02", "--max-poll", "0.1", module],
        cwd=directory, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        store = SQLiteStateStore(directory / "app.db")
        backend = DurableBackend(store)
        handle_state = None
        for _ in range(500):
            handle_state = backend.read_state(instance_id)
            if handle_state and handle_state.get("status") in ("completed", "failed"):
                break
            if worker.poll() is not None:
                break
            subprocess.run(["sleep", "0.02"])
        store.close()
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0]
    assert handle_state and handle_state["status"] == "completed", log
    return log


def test_an_instance_started_from_a_script_runs_on_a_worker_that_imports_it(tmp_path):
    (tmp_path / "agent.py").write_text(AGENT)
    started = run(tmp_path, "agent.py", "start", "job-1")
    assert started.stdout.strip() == "agent:agent"
    run(tmp_path, "-m", "durable", "publish", "--store", "sqlite:///app.db", "job-1", "answer",
        "--json", '"42"')  # fmt: skip
    worker_until_done(tmp_path, "agent", "job-1")
    status = run(tmp_path, "-m", "durable", "status", "--store", "sqlite:///app.db", "job-1")
    assert "result: 'fetched job-1: 42'" in status.stdout


def test_starting_it_again_from_the_module_finds_the_same_instance(tmp_path):
    (tmp_path / "agent.py").write_text(AGENT)
    run(tmp_path, "agent.py", "start", "job-1")
    again = run(tmp_path, "-c", (
        "import asyncio, agent\n"
        "from durable import DurableBackend, SQLiteStateStore\n"
        "backend = DurableBackend(SQLiteStateStore('app.db'))\n"
        "asyncio.run(agent.agent.start('job-1', orchestration_backend=backend, "
        "instance_id='job-1'))\n"
        "print(backend.read_state('job-1')['status'])\n"
    ))  # fmt: skip
    assert again.stdout.strip() == "enqueued"


def test_a_program_run_with_python_m_is_saved_under_that_module(tmp_path):
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "__init__.py").write_text("")
    (tmp_path / "jobs" / "agent.py").write_text(AGENT)
    started = run(tmp_path, "-m", "jobs.agent", "start", "job-2")
    assert started.stdout.strip() == "jobs.agent:agent"


def test_a_program_saved_under_main_names_what_to_do():
    # Only state of an earlier version (or of a process with no module file) names __main__.
    with pytest.raises(IncompatibleStateError, match="Define the function in a module"):
        program_for_key("__main__:agent")


CHECKOUT = """
import asyncio
from durable import (
    DurableBackend, PauseForEventException, SQLiteStateStore, durable_execute, make_durable,
    wait_for_event,
)

PRICES = {"apple": 3, "pear": 4}   # a module global the helper reads


def price(item):
    return PRICES[item]


async def total_of(items):          # an undecorated helper of the script
    running = 0
    for item in items:
        running += await durable_execute(price, item)
    bonus = await wait_for_event("approve")
    return running + bonus


@make_durable
async def checkout(customer, items):
    total = await total_of(items)
    return f"{customer} pays {total}"


if __name__ == "__main__":
    backend = DurableBackend(SQLiteStateStore("app.db"))
    try:
        asyncio.run(checkout("ada", ["apple", "pear"], orchestration_backend=backend,
                             instance_id="c1"))
    except PauseForEventException:
        print("paused")
"""


def test_a_script_paused_in_an_undecorated_helper_resumes_on_a_worker(tmp_path):
    (tmp_path / "checkout.py").write_text(CHECKOUT)
    assert run(tmp_path, "checkout.py").stdout.strip() == "paused"
    shown = run(tmp_path, "-m", "durable", "show", "--store", "sqlite:///app.db", "c1")
    assert "checkout:total_of, line" in shown.stdout  # the helper under the script's name
    run(tmp_path, "-m", "durable", "publish", "--store", "sqlite:///app.db", "c1", "approve",
        "--json", "10")  # fmt: skip
    worker_until_done(tmp_path, "checkout", "c1")
    status = run(tmp_path, "-m", "durable", "status", "--store", "sqlite:///app.db", "c1")
    assert "result: 'ada pays 17'" in status.stdout
