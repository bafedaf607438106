"""`import durable` works where POSIX is missing (Windows): checked here by running durable in a
process where `fcntl` cannot be imported, as there. What needs POSIX is refused clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Every test runs durable in a process of its own: left out of the fast subset.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# Makes `import fcntl` raise ImportError, as it does on Windows, before durable is imported.
WITHOUT_FCNTL = """\
import sys
sys.modules["fcntl"] = None
"""

FLOW = """\
import asyncio, json, sys
from pathlib import Path
from durable import (
    DurableBackend, InMemoryStateStore, PauseForEventException, SQLiteStateStore, make_durable,
)

async def greet(name):
    raise PauseForEventException("allow")
    return f"hello {name}"

durable_greet = make_durable(greet)

async def run(store):
    backend = DurableBackend(store)
    try:
        await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
        return "no pause"
    except PauseForEventException as pause:
        first = f"paused for {pause.event}"
    backend.publish_event("greet-1", "allow")
    second = await durable_greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    return [first, second]

kind, where = sys.argv[1], Path(sys.argv[2])
store = InMemoryStateStore() if kind == "memory" else SQLiteStateStore(where / "app.db")
print(json.dumps(asyncio.run(run(store))))
"""


def _run_without_fcntl(tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(WITHOUT_FCNTL + textwrap.dedent(code))
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_durable_and_its_tools_import_without_fcntl(tmp_path):
    result = _run_without_fcntl(
        tmp_path,
        """
        import durable, durable.cli, durable.testing, durable.worker
        from durable.stores import locks
        print(locks.HAS_FILE_LOCKS, durable.__version__)
        """,
    )
    assert result.stdout.split()[0] == "False"


def test_the_memory_store_runs_a_durable_function_without_fcntl(tmp_path):
    result = _run_without_fcntl(tmp_path, FLOW, "memory", str(tmp_path))
    assert json.loads(result.stdout) == ["paused for allow", "hello Ada"]


def test_the_sqlite_store_runs_a_durable_function_without_fcntl(tmp_path):
    result = _run_without_fcntl(tmp_path, FLOW, "sqlite", str(tmp_path))
    assert json.loads(result.stdout) == ["paused for allow", "hello Ada"]
    # Its leases were SQLite locks, as they would be on Windows, not flock files.
    assert not list((tmp_path / "app.db.leases").glob("*.lock"))
    assert list((tmp_path / "app.db.leases").glob("*.lockdb"))


def test_the_sqlite_store_refuses_a_second_runner_without_fcntl(tmp_path):
    result = _run_without_fcntl(
        tmp_path,
        """
        from durable import SQLiteStateStore
        first, second = SQLiteStateStore("app.db"), SQLiteStateStore("app.db")
        assert first.acquire_lease("greet-1", "runner one") is None
        print(second.acquire_lease("greet-1", "runner two"))
        """,
    )
    assert "runner one" in result.stdout


def test_the_disk_store_is_refused_without_fcntl_naming_the_platform_and_the_alternative(
    tmp_path,
):
    result = _run_without_fcntl(
        tmp_path,
        """
        from durable import DiskStateStore
        try:
            DiskStateStore("store")
        except NotImplementedError as error:
            print(error)
        """,
    )
    message = result.stdout
    assert "DiskStateStore needs POSIX file locks (fcntl)" in message
    assert f"({sys.platform})" in message and "SQLiteStateStore" in message
    assert not (tmp_path / "store").exists()


def test_a_file_store_url_is_refused_without_fcntl(tmp_path):
    result = _run_without_fcntl(
        tmp_path,
        """
        from durable.stores import store_from_url
        try:
            store_from_url("file:///tmp/never-made")
        except NotImplementedError as error:
            print(error)
        """,
    )
    assert "DiskStateStore needs POSIX file locks" in result.stdout


def test_the_crash_test_kit_is_refused_without_fcntl_naming_what_to_do(tmp_path):
    result = _run_without_fcntl(
        tmp_path,
        """
        from durable.testing import crash_test, run_workflow_process
        for call in (
            lambda: crash_test("flows:greet", store_root="runs"),
            lambda: run_workflow_process("flows:greet", "runs", "greet-1"),
        ):
            try:
                call()
            except NotImplementedError as error:
                print(error)
        """,
    )
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert "durable.testing.crash_test" in lines[0]
    assert "durable.testing.run_workflow_process" in lines[1]
    assert all("POSIX" in line and "WSL" in line for line in lines)
    assert not (tmp_path / "runs").exists()
