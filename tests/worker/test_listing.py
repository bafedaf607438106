"""Listing instances: `durable.list_instances` and `durable list` show every instance of a
store, newest first, filtered by status and program, without running stored bytes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    InstanceInfo,
    PauseForEventException,
    SQLiteStateStore,
    list_instances,
)
from durable.cli import EXIT_UNREADABLE, main
from durable.runtime.backend import RECORD_FORMAT
from durable.stores.base import StateStore
from tests.worker import flows

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["memory", "file", "sqlite"])
def store(request, tmp_path):
    """(the store's URL or None, a backend over it)."""
    if request.param == "memory":
        yield None, DurableBackend(InMemoryStateStore())
        return
    if request.param == "file":
        url, store = f"file://{tmp_path / 'store'}", DiskStateStore(tmp_path / "store")
    else:
        url, store = f"sqlite:///{tmp_path / 'store.db'}", SQLiteStateStore(tmp_path / "store.db")
    yield url, DurableBackend(store)
    store.close()


async def write_records(backend, instance_id: str, records: list[bytes]) -> None:
    """Put `records` under `instance_id` as a writer to the store could (awaiting a
    group-committed write)."""
    written = backend.store.replace_records(instance_id, records)
    if written is not None:
        await written


async def three_instances(backend) -> None:
    """done-1 completed, wait-1 waiting for "approve", new-1 enqueued (created in that order)."""
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="done-1")
    with pytest.raises(PauseForEventException):
        await flows.approval("req", orchestration_backend=backend, instance_id="wait-1")
    await flows.record.start("/dev/null", "b", orchestration_backend=backend, instance_id="new-1")


async def test_every_instance_is_listed_newest_first(store):
    _, backend = store
    await three_instances(backend)
    listed = list_instances(backend)
    assert [info.instance_id for info in listed] == ["new-1", "wait-1", "done-1"]
    assert [info.status for info in listed] == ["enqueued", "waiting", "completed"]
    assert all(isinstance(info, InstanceInfo) for info in listed)


async def test_a_listing_names_the_program_the_awaited_event_and_the_times(store):
    _, backend = store
    await three_instances(backend)
    [waiting] = list_instances(backend, status="waiting")
    assert waiting.program == "tests.worker.flows:approval"
    assert waiting.waiting_for == ("approve",)
    assert waiting.created_at <= waiting.updated_at


async def test_a_listing_filters_by_several_statuses(store):
    _, backend = store
    await three_instances(backend)
    listed = list_instances(backend, status=["completed", "enqueued"])
    assert {info.instance_id for info in listed} == {"done-1", "new-1"}


@pytest.mark.parametrize("program", ["tests.worker.flows:record", "record", "tests.worker.flows"])
async def test_a_listing_filters_by_program_key_name_or_module(store, program):
    _, backend = store
    await three_instances(backend)
    found = {info.instance_id for info in list_instances(backend, program=program)}
    expected = {"done-1", "new-1"} if program != "tests.worker.flows" else {
        "done-1", "new-1", "wait-1"
    }  # fmt: skip
    assert found == expected


async def test_a_listing_stops_at_its_limit(store):
    _, backend = store
    await three_instances(backend)
    assert [info.instance_id for info in list_instances(backend, limit=2)] == ["new-1", "wait-1"]


def test_an_unknown_status_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown status 'paused'; a status is one of enqueued"):
        list_instances(DurableBackend(), status="paused")


@pytest.mark.parametrize("limit", [0, -1, True, 1.5])
def test_a_limit_must_be_a_positive_int(limit):
    with pytest.raises(ValueError, match="limit must be an int >= 1"):
        list_instances(DurableBackend(), limit=limit)


def test_a_whole_state_store_cannot_be_listed():
    class Whole(StateStore):
        def load(self, instance_id):
            return None

        def save(self, instance_id, state):
            pass

    with pytest.raises(TypeError, match="listing needs a DurableBackend over a store of records"):
        list_instances(DurableBackend(Whole()))


async def test_an_unreadable_instance_raises_or_is_handed_to_on_unreadable(store):
    _, backend = store
    await three_instances(backend)
    await write_records(backend, "bad-1", [b"not a pickle"])
    with pytest.raises(pickle.UnpicklingError):
        list_instances(backend)
    unreadable: list[str] = []
    listed = list_instances(backend, on_unreadable=lambda i, error: unreadable.append(i))
    assert unreadable == ["bad-1"] and len(listed) == 3


# -- durable list ---------------------------------------------------------------------------
def listing(capsys, url: str, *options: str) -> tuple[int, str, str]:
    code = main(["list", "--store", url, *options])
    out, err = capsys.readouterr()
    return code, out, err


async def test_durable_list_prints_a_table_newest_first(stored, capsys):
    url, backend = stored
    await three_instances(backend)
    code, out, err = listing(capsys, url)
    lines = out.splitlines()
    assert code == 0 and err == ""
    assert lines[0].split() == ["ID", "PROGRAM", "STATUS", "WAITING", "FOR", "CREATED", "UPDATED"]
    assert [line.split()[0] for line in lines[1:]] == ["new-1", "wait-1", "done-1"]
    assert "'approve'" in lines[2]


async def test_durable_list_json_filters_by_status_and_limit(stored, capsys):
    url, backend = stored
    await three_instances(backend)
    code, out, _ = listing(capsys, url, "--json", "--status", "completed", "--status", "enqueued")
    rows = json.loads(out)
    assert code == 0 and [row["instance_id"] for row in rows] == ["new-1", "done-1"]
    assert rows[1]["program"] == "tests.worker.flows:record"
    code, out, _ = listing(capsys, url, "--json", "--limit", "1")
    assert [row["instance_id"] for row in json.loads(out)] == ["new-1"]


async def test_durable_list_shows_an_unreadable_instance_and_exits_3(stored, capsys, tmp_path):
    url, backend = stored
    await three_instances(backend)
    marker = tmp_path / "ran"
    evil = b"cos\nsystem\n(S" + repr(f"touch {marker}").encode() + b"\ntR."
    await write_records(backend, "evil-1", [evil])
    record = pickle.dumps((RECORD_FORMAT, {"set": {"status": "bogus"}}))
    await write_records(backend, "bad-1", [record])
    code, out, err = listing(capsys, url)
    assert code == EXIT_UNREADABLE
    assert "instance 'bad-1'" in err and "no known status" in err
    assert "evil-1" in out and not marker.exists()


def test_durable_list_refuses_a_store_that_does_not_exist(tmp_path, capsys):
    code, _, err = listing(capsys, f"sqlite:///{tmp_path / 'typo.db'}")
    assert code != 0 and "does not exist" in err
    assert not (tmp_path / "typo.db").exists()


def test_durable_version_prints_the_distributions_version():
    result = subprocess.run(
        [sys.executable, "-m", "durable", "--version"], capture_output=True, text=True, cwd=ROOT
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"durable {project['version']}\n"


async def test_commands_that_read_stored_state_never_import_the_compiler(tmp_path):
    # The command line starts in about half the time without libcst (the compiler's).
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SQLiteStateStore(tmp_path / "store.db")
    await three_instances(DurableBackend(store))
    store.close()
    script = (
        "import sys\n"
        "from durable.cli import main\n"
        f"codes = [main(['list', '--store', {url!r}]), main(['status', '--store', {url!r}, "
        f"'wait-1']), main(['history', '--store', {url!r}, 'done-1'])]\n"
        "print(codes, sorted({m.split('.')[0] for m in sys.modules} & {'libcst', 'tomllib'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[0, 0, 0] []"
