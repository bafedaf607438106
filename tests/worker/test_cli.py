"""`durable status` and `durable publish` against real stores: nothing stored runs to show a
status, damage is one line, exit codes say what happened, and a store that does not exist or
an instance that ended is refused rather than written to."""

from __future__ import annotations

import pickle
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from durable import DiskStateStore, DurableBackend, PauseForEventException, SQLiteStateStore
from durable.cli import (
    EXIT_ENDED,
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_UNREADABLE,
    main,
)
from durable.runtime.backend import RECORD_FORMAT
from durable.stores.base import InstanceSummary
from tests.worker import flows

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Receipt:
    number: int


class OutOfStock(Exception):
    pass


def os_system(command: str) -> bytes:
    """A pickle that runs `command` when unpickled plainly."""
    return b"cos\nsystem\n(S" + repr(command).encode() + b"\ntR."


def store_state(backend, instance_id: str, fields: dict) -> None:
    """Write `fields` as the whole state of `instance_id`, as a writer to the store could."""
    record = pickle.dumps((RECORD_FORMAT, {"set": fields}))
    backend.store.replace_records(instance_id, [record], InstanceSummary(fields["status"]))


def status(capsys, url: str, instance_id: str) -> tuple[int, str, str]:
    code = main(["status", "--store", url, instance_id])
    out, err = capsys.readouterr()
    return code, out, err


# -- status: what it shows, and that it runs nothing -----------------------------------------
async def test_status_shows_a_plain_result(stored, capsys):
    url, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    assert status(capsys, url, "r-1") == (0, "completed\nresult: 'recorded a'\n", "")


def test_status_names_an_object_of_your_class_instead_of_loading_it(stored, capsys):
    url, backend = stored
    store_state(backend, "r-1", {"status": "completed", "result": pickle.dumps(Receipt(7))})
    code, out, err = status(capsys, url, "r-1")
    assert code == 0
    assert out == f"completed\nresult: <{__name__}.Receipt object, not loaded>\n"
    assert f"note: not loaded: {__name__}.Receipt." in err and "DURABLE_SECRET_KEY" in err


def test_status_does_not_import_the_module_of_a_stored_object(
    stored, capsys, tmp_path, monkeypatch
):
    url, backend = stored
    marker = tmp_path / "imported"
    (tmp_path / "trapped_results.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Result: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import trapped_results  # pickled by reference, then forgotten

    result = pickle.dumps(trapped_results.Result())
    del sys.modules["trapped_results"]
    marker.unlink()
    store_state(backend, "r-1", {"status": "completed", "result": result})
    code, out, _ = status(capsys, url, "r-1")
    assert code == 0 and "<trapped_results.Result object, not loaded>" in out
    assert not marker.exists() and "trapped_results" not in sys.modules


def test_status_runs_no_code_a_stored_result_holds(stored, capsys, tmp_path):
    url, backend = stored
    marker = tmp_path / "ran"
    store_state(backend, "r-1", {"status": "completed", "result": os_system(f"touch {marker}")})
    code, out, _ = status(capsys, url, "r-1")
    assert code == 0 and out == "completed\nresult: <os.system object, not loaded>\n"
    assert not marker.exists()


def test_status_runs_no_code_a_stored_record_is(stored, capsys, tmp_path):
    url, backend = stored
    marker = tmp_path / "ran"
    backend.store.replace_records("r-1", [os_system(f"touch {marker}")])
    code, out, err = status(capsys, url, "r-1")
    assert code == EXIT_UNREADABLE and out == ""
    assert err.startswith("durable status: error: instance 'r-1' in ") and "cannot be read" in err
    assert not marker.exists()


def test_status_reports_a_damaged_record_in_one_line(stored, capsys):
    url, backend = stored
    backend.store.replace_records("r-1", [b"\x80\x05not a pickle at all"])
    code, out, err = status(capsys, url, "r-1")
    assert code == EXIT_UNREADABLE and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "instance 'r-1'" in err and "cannot be read" in err


def test_status_reports_a_record_of_an_unknown_format_in_one_line(stored, capsys):
    url, backend = stored
    backend.store.replace_records("r-1", [pickle.dumps((99, {}))])
    code, _, err = status(capsys, url, "r-1")
    assert code == EXIT_UNREADABLE and err.count("\n") == 1
    assert "StateFormatError" in err and "record format 99" in err


def test_status_reports_state_without_a_status_in_one_line(stored, capsys):
    url, backend = stored
    backend.store.replace_records("r-1", [pickle.dumps((RECORD_FORMAT, {"set": {"x": 1}}))])
    code, _, err = status(capsys, url, "r-1")
    assert code == EXIT_UNREADABLE and "has no known status (None)" in err


def test_status_reports_a_field_of_an_unexpected_type_in_one_line(stored, capsys):
    url, backend = stored
    # waiting_events as an object of a class: it cannot be listed, and is not loaded.
    fields = {"status": "waiting", "waiting_events": Receipt(1)}
    backend.store.replace_records("w-1", [pickle.dumps((RECORD_FORMAT, {"set": fields}))])
    code, out, err = status(capsys, url, "w-1")
    assert code == EXIT_UNREADABLE and out == "" and err.count("\n") == 1
    assert "instance 'w-1'" in err and "cannot be read" in err


async def test_status_of_a_failed_instance_shows_its_error_and_exits_non_zero(stored, capsys):
    url, backend = stored
    with pytest.raises(LookupError):
        await flows.broken("no stock", orchestration_backend=backend, instance_id="b-1")
    assert status(capsys, url, "b-1") == (EXIT_FAILED, "failed\nerror: LookupError: no stock\n", "")


async def test_status_names_an_error_of_your_class_without_loading_it(stored, capsys):
    url, backend = stored
    with pytest.raises(OutOfStock):
        await flows.raising(OutOfStock("none left"), orchestration_backend=backend, instance_id="b")
    code, out, _ = status(capsys, url, "b")
    assert code == EXIT_FAILED
    assert out == f"failed\nerror: {__name__}.OutOfStock: none left\n"


def test_status_of_a_missing_instance_exits_not_found(stored, capsys):
    url, _ = stored
    code, out, err = status(capsys, url, "nobody")
    assert code == EXIT_NOT_FOUND and out == "" and "no instance 'nobody'" in err


async def test_status_of_a_waiting_instance_names_the_events_in_its_inbox(stored, capsys):
    url, backend = stored
    with pytest.raises(PauseForEventException):
        await flows.approval("deploy", orchestration_backend=backend, instance_id="ap-1")
    backend.publish_event("ap-1", "other", Receipt(1))  # a payload of a class: not loaded
    code, out, _ = status(capsys, url, "ap-1")
    assert code == 0
    assert out.splitlines() == [
        "waiting",
        "waiting for event: 'approve'",
        "events in its inbox: 'other'",
    ]


# -- status with a key: signed state is trusted ----------------------------------------------
async def test_with_a_key_status_loads_a_signed_result(stored, capsys, monkeypatch):
    url, backend = stored
    monkeypatch.setenv("DURABLE_SECRET_KEY", "k1")
    signed = DurableBackend(backend.store, secret_key="k1")
    await flows.receipt(7, orchestration_backend=signed, instance_id="r-1")
    assert status(capsys, url, "r-1") == (0, "completed\nresult: Receipt(number=7)\n", "")


async def test_with_a_key_status_refuses_unsigned_state_in_one_line(stored, capsys, monkeypatch):
    url, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    monkeypatch.setenv("DURABLE_SECRET_KEY", "k1")
    code, out, err = status(capsys, url, "r-1")
    assert code == EXIT_UNREADABLE and out == "" and err.count("\n") == 1
    assert "instance 'r-1'" in err and "Traceback" not in err


# -- a store that does not exist is not created -------------------------------------------
MISSING_STORES = {
    "a SQLite file in a directory that does not exist": "sqlite:///{tmp}/nodir/x.db",
    "a SQLite file that does not exist": "sqlite:///{tmp}/typo.db",
    "a directory that does not exist": "file://{tmp}/typo",
}


@pytest.mark.parametrize("command", ["status", "publish"])
@pytest.mark.parametrize("url", MISSING_STORES.values(), ids=MISSING_STORES)
def test_a_store_that_does_not_exist_is_refused_and_not_created(command, url, tmp_path, capsys):
    url = url.format(tmp=tmp_path)
    arguments = ["r-1"] if command == "status" else ["r-1", "go", "--before-start"]
    assert main([command, "--store", url, *arguments]) == EXIT_NOT_FOUND
    err = capsys.readouterr().err
    assert f"no store at {url}" in err and "does not exist" in err and "--store" in err
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_is_not_a_disk_store_is_refused_and_left_alone(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    assert main(["status", "--store", f"file://{tmp_path / 'mine'}", "r-1"]) == EXIT_NOT_FOUND
    assert "disk store (no state/ in it)" in capsys.readouterr().err
    assert list((tmp_path / "mine").iterdir()) == []


def test_relative_sqlite_path_is_named_absolute_when_missing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--store", "sqlite:///app.db", "r-1"]) == EXIT_NOT_FOUND
    assert str(tmp_path / "app.db") in capsys.readouterr().err


def test_a_memory_store_needs_no_file(capsys):
    assert main(["status", "--store", "memory://", "r-1"]) == EXIT_NOT_FOUND
    assert "no instance 'r-1'" in capsys.readouterr().err


@pytest.mark.slow
def test_status_help_lists_the_exit_codes():
    result = subprocess.run(
        [sys.executable, "-m", "durable", "status", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0
    assert "exit codes:" in result.stdout
    for code in ("0", "1", "2", "3", "4", "5"):
        assert f"\n  {code}  " in result.stdout


# -- publish: refused where the event could never be consumed ---------------------------------
def publish(capsys, url: str, *arguments: str) -> tuple[int, str, str]:
    code = main(["publish", "--store", url, *arguments])
    out, err = capsys.readouterr()
    return code, out, err


async def test_publish_to_a_completed_instance_is_refused(stored, capsys):
    url, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    code, out, err = publish(capsys, url, "r-1", "go", "--before-start")
    assert code == EXIT_ENDED and out == ""
    assert "instance 'r-1' has completed" in err and "'go' was not published" in err
    assert backend.pending_events("r-1") == []


async def test_publish_to_a_failed_instance_is_refused(stored, capsys):
    url, backend = stored
    with pytest.raises(LookupError):
        await flows.broken("no stock", orchestration_backend=backend, instance_id="b-1")
    code, _, err = publish(capsys, url, "b-1", "go")
    assert code == EXIT_ENDED and "instance 'b-1' has failed" in err
    assert backend.pending_events("b-1") == []


def test_publish_to_an_unknown_instance_is_refused(stored, capsys):
    url, backend = stored
    code, out, err = publish(capsys, url, "later", "go")
    assert code == EXIT_NOT_FOUND and out == ""
    assert "no instance 'later'" in err and "--before-start" in err
    assert backend.pending_events("later") == []


async def test_publish_before_start_keeps_the_event_until_the_instance_starts(stored, capsys):
    url, backend = stored
    code, out, err = publish(
        capsys, url, "ap-1", "approve", "--json", '{"by": "ops"}', "--before-start"
    )
    assert code == 0 and out == "published event 'approve' to instance 'ap-1'\n"
    assert "does not exist yet" in err
    result = await flows.approval("deploy", orchestration_backend=backend, instance_id="ap-1")
    assert result == "deploy approved by ops"


async def test_publish_to_a_waiting_instance_is_accepted(stored, capsys):
    url, backend = stored
    await flows.approval.start("deploy", instance_id="ap-1", orchestration_backend=backend)
    code, out, err = publish(capsys, url, "ap-1", "approve", "--json", '{"by": "ops"}')
    assert (code, out, err) == (0, "published event 'approve' to instance 'ap-1'\n", "")
    assert [event.name for event in backend.pending_events("ap-1")] == ["approve"]


def test_publish_runs_no_code_a_stored_record_is(tmp_path, capsys):
    # The disk store keeps no summaries, so publish reads the records: restricted.
    backend = DurableBackend(DiskStateStore(tmp_path / "store"))
    marker = tmp_path / "ran"
    backend.store.replace_records("r-1", [os_system(f"touch {marker}")])
    code, _, err = publish(capsys, f"file://{tmp_path / 'store'}", "r-1", "go")
    assert code == EXIT_UNREADABLE and "instance 'r-1'" in err and "cannot be read" in err
    assert not marker.exists() and backend.pending_events("r-1") == []


# -- in a process of its own -------------------------------------------------------------------
@pytest.mark.slow
def test_status_in_its_own_process_runs_no_stored_code(tmp_path):
    backend = DurableBackend(SQLiteStateStore(tmp_path / "store.db"))
    marker = tmp_path / "ran"
    store_state(backend, "r-1", {"status": "completed", "result": os_system(f"touch {marker}")})
    backend.store.close()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "durable",
            "status",
            "--store",
            f"sqlite:///{tmp_path / 'store.db'}",
            "r-1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "completed\nresult: <os.system object, not loaded>\n"
    assert not marker.exists()
