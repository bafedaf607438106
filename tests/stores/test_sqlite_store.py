"""`SQLiteStateStore`: one database file, one transaction per write, shared by processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import durable
from durable import (
    CorruptStateError,
    DurableBackend,
    PauseForEventException,
    SQLiteStateStore,
    StateFormatError,
    make_durable,
)
from durable.stores import sqlite as sqlite_module
from durable.stores import store_from_url
from durable.stores.base import InstanceSummary

RECORD = b"the saved call stack of order-7 " * 8


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def store(db_path):
    store = SQLiteStateStore(db_path)
    yield store
    store.close()


def run_python(script: str, *args: str, cwd: Path | None = None, **env: str):
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DURABLE_FAULT", "DURABLE_STORE")
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def raw(path: Path, sql: str) -> list:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def files_of(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


# -- surviving the store object and the process ---------------------------------------------------
def test_records_and_events_survive_a_new_store_object(store, db_path):
    store.append_record("order-7", RECORD)
    store.append_record("order-7", b"second")
    event_id = store.append_event("order-7", b"payment received")
    store.close()
    again = SQLiteStateStore(db_path)
    assert again.read_records("order-7") == [RECORD, b"second"]
    assert again.read_events("order-7") == [(event_id, b"payment received")]
    assert again.list_instances() == ["order-7"]
    again.close()


READ_SCRIPT = """
import sys
from durable import SQLiteStateStore
store = SQLiteStateStore(sys.argv[1])
print(store.read_records("order-7"), store.read_events("order-7"), store.list_instances())
"""


def test_records_and_events_survive_into_a_new_process(store, db_path):
    store.append_record("order-7", b"first")
    event_id = store.append_event("order-7", b"event")
    store.close()
    finished = run_python(READ_SCRIPT, str(db_path))
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == f"[b'first'] [({event_id}, b'event')] ['order-7']"


def test_event_ids_keep_growing_across_store_objects_after_the_newest_is_deleted(store, db_path):
    store.append_event("order-7", b"first")
    newest = store.append_event("order-7", b"second")
    store.delete_events("order-7", [newest])
    store.close()
    again = SQLiteStateStore(db_path)
    assert again.append_event("order-8", b"third") > newest
    again.close()


def test_a_closed_store_opens_its_connection_again_when_used(store):
    store.append_record("order-7", b"one")
    store.close()
    store.close()
    store.append_record("order-7", b"two")
    assert store.read_records("order-7") == [b"one", b"two"]


def test_a_store_used_as_a_context_manager_is_closed_on_exit(db_path):
    with SQLiteStateStore(db_path) as store:
        store.append_record("order-7", b"one")
    assert store._connection is None
    assert not db_path.with_name("store.db-wal").exists()  # the last connection checkpointed


def test_store_creates_the_directory_of_its_file(tmp_path):
    store = SQLiteStateStore(tmp_path / "nested" / "deeper" / "store.db")
    store.append_record("order-7", b"one")
    assert (tmp_path / "nested" / "deeper" / "store.db").is_file()
    store.close()


def test_repr_names_the_path(db_path):
    store = SQLiteStateStore(db_path)
    assert repr(store) == f"SQLiteStateStore({str(db_path)!r})"
    store.close()


# -- the database file ----------------------------------------------------------------------------
def test_the_database_is_in_wal_mode_with_full_sync(store, db_path):
    assert raw(db_path, "PRAGMA journal_mode") == [("wal",)]
    assert store._connection.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert store._connection.execute("PRAGMA busy_timeout").fetchone() == (10_000,)


def test_the_schema_carries_its_version_and_application_id(store, db_path):
    assert raw(db_path, "PRAGMA user_version") == [(sqlite_module.SCHEMA_VERSION,)]
    assert raw(db_path, "PRAGMA application_id") == [(sqlite_module.APPLICATION_ID,)]
    tables = {name for (name,) in raw(db_path, "SELECT name FROM sqlite_master")}
    assert {"records", "events", "instances", "events_by_instance", "instances_by_status"} <= tables


def test_instances_table_keeps_when_each_instance_was_created_and_updated(store, db_path):
    before = time.time()
    store.append_record("order-7", b"one")
    store.append_record("order-7", b"two")
    store.replace_records("order-8", [b"one"])
    rows = dict(
        (name, (created, updated))
        for name, created, updated in raw(
            db_path, "SELECT instance_id, created_at, updated_at FROM instances"
        )
    )
    assert set(rows) == {"order-7", "order-8"}
    created, updated = rows["order-7"]
    assert before <= created <= updated <= time.time()
    store.delete_instance("order-7")
    assert raw(db_path, "SELECT instance_id FROM instances") == [("order-8",)]


def test_the_database_files_are_private_to_their_owner(store, db_path):
    store.append_record("order-7", RECORD)
    store.append_event("order-7", RECORD)
    files = sorted(db_path.parent.iterdir())
    assert [path.name for path in files] == ["store.db", "store.db-shm", "store.db-wal"]
    for path in files:
        assert path.stat().st_mode & 0o077 == 0, path


def test_every_write_is_exactly_one_transaction(store):
    store.append_record("order-7", b"old")
    event = store.append_event("order-7", b"event")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    writes = [
        lambda: store.append_record("order-7", RECORD),
        lambda: store.append_record("order-7", RECORD, InstanceSummary("waiting", "go", 1.0)),
        lambda: store.replace_records("order-7", [b"a", b"b", b"c"]),
        lambda: store.replace_records("order-7", [b"a"], InstanceSummary("running")),
        lambda: store.append_event("order-7", b"another"),
        lambda: store.delete_events("order-7", [event, event + 1]),
        lambda: store.delete_instance("order-7"),
    ]
    for write in writes:
        statements.clear()
        write()
        assert statements[0] == "BEGIN IMMEDIATE"
        assert statements[-1] == "COMMIT"
        assert sum(s.startswith(("BEGIN", "COMMIT", "ROLLBACK")) for s in statements) == 2
    store._connection.set_trace_callback(None)


def test_a_write_waits_for_another_process_holding_the_write_lock(store, db_path):
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    releaser = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    releaser.start()
    started = time.monotonic()
    store.append_record("order-7", b"waited for the lock")
    assert time.monotonic() - started >= 0.25
    releaser.join()
    other.close()
    assert store.read_records("order-7") == [b"waited for the lock"]


# -- files that are not a store of this version ------------------------------------------------
def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 20)
    before = files_of(tmp_path)
    with pytest.raises(StateFormatError) as caught:
        SQLiteStateStore(path)
    message = str(caught.value)
    assert str(path) in message and "not an SQLite database" in message
    assert "not changed" in message
    assert files_of(tmp_path) == before


def test_an_sqlite_database_of_another_application_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "app.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE users (name TEXT)")
    connection.execute("INSERT INTO users VALUES ('ada')")
    connection.commit()
    connection.close()
    before = files_of(tmp_path)
    with pytest.raises(StateFormatError) as caught:
        SQLiteStateStore(path)
    assert str(path) in str(caught.value) and "another application" in str(caught.value)
    assert files_of(tmp_path) == before


def test_an_sqlite_header_over_garbage_is_refused_as_corrupt_and_left_untouched(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    before = files_of(tmp_path)
    with pytest.raises(CorruptStateError) as caught:
        SQLiteStateStore(path)
    assert str(path) in str(caught.value)
    assert files_of(tmp_path) == before


def test_a_store_of_a_newer_schema_is_refused_naming_both_versions(store, db_path):
    store.append_record("order-7", b"one")
    store.close()
    newer = sqlite_module.SCHEMA_VERSION + 1
    connection = sqlite3.connect(db_path)
    connection.execute(f"PRAGMA user_version = {newer}")
    connection.close()
    before = db_path.read_bytes()
    with pytest.raises(StateFormatError) as caught:
        SQLiteStateStore(db_path)
    message = str(caught.value)
    assert f"schema version {newer}" in message
    assert f"reads schema {sqlite_module.SCHEMA_VERSION}" in message
    assert "Upgrade durable" in message and str(db_path) in message
    assert db_path.read_bytes() == before


def test_a_store_missing_one_of_its_tables_is_refused(store, db_path):
    store.close()
    connection = sqlite3.connect(db_path)
    connection.execute("DROP TABLE events")
    connection.close()
    with pytest.raises(StateFormatError, match="tables"):
        SQLiteStateStore(db_path)


def test_damaged_pages_are_refused_naming_the_instance(store, db_path):
    for _ in range(40):
        store.append_record("order-7", os.urandom(3000))
    store.close()
    data = bytearray(db_path.read_bytes())
    page = 4096
    for offset in range(page, len(data), page):  # every page but the schema's
        data[offset : offset + 100] = b"\xff" * 100
    db_path.write_bytes(bytes(data))
    damaged = SQLiteStateStore(db_path)
    with pytest.raises(CorruptStateError) as caught:
        damaged.read_records("order-7")
    assert "instance 'order-7'" in str(caught.value) and str(db_path) in str(caught.value)
    damaged.close()


def test_an_empty_existing_file_becomes_a_store(tmp_path):
    path = tmp_path / "store.db"
    path.touch()
    store = SQLiteStateStore(path)
    store.append_record("order-7", b"one")
    assert store.read_records("order-7") == [b"one"]
    store.close()


def test_a_directory_is_refused_with_what_to_pass_instead(tmp_path):
    with pytest.raises(IsADirectoryError, match="path of a database file"):
        SQLiteStateStore(tmp_path)


def test_an_in_memory_database_is_refused_pointing_at_the_memory_store():
    with pytest.raises(ValueError, match="InMemoryStateStore"):
        SQLiteStateStore(":memory:")


# -- atomic writes --------------------------------------------------------------------------------
def test_replace_records_failing_after_the_delete_keeps_the_old_log(store, db_path):
    store.append_record("order-7", b"old one")
    store.append_record("order-7", b"old two")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    # A real SQLite failure in the middle of the transaction: the second new record is longer
    # than the connection allows, so its INSERT fails after the DELETE has run.
    store._connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    with pytest.raises(sqlite3.DataError):
        store.replace_records("order-7", [b"new", b"x" * 2000])
    store._connection.set_trace_callback(None)
    assert any(s.startswith("DELETE FROM records") for s in statements)
    assert statements[-1] == "ROLLBACK"
    assert store.read_records("order-7") == [b"old one", b"old two"]
    assert raw(db_path, "SELECT data FROM records ORDER BY position") == [
        (b"old one",),
        (b"old two",),
    ]
    # Nothing is left half-open: the store and other connections can write again.
    store.append_record("order-7", b"next")
    assert SQLiteStateStore(db_path).read_records("order-7") == [b"old one", b"old two", b"next"]


def test_an_append_that_fails_leaves_the_log_and_the_instance_untouched(store):
    store._connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    with pytest.raises(sqlite3.DataError):
        store.append_record("order-7", b"x" * 2000)
    assert store.read_records("order-7") == []
    assert store.list_instances() == []
    store.append_record("order-7", b"fits")
    assert store.read_records("order-7") == [b"fits"]


def test_a_statement_failing_late_in_a_compaction_rolls_back_the_delete_and_inserts(
    store, monkeypatch
):
    store.append_record("order-7", b"old")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    # The last statement of the transaction (the instances row) fails after the new log is in.
    monkeypatch.setattr(sqlite_module, "_TOUCH_INSTANCE", "THIS IS NOT SQL")
    monkeypatch.setattr(sqlite_module, "_TOUCH_INSTANCE_TIME", "THIS IS NOT SQL EITHER")
    with pytest.raises(sqlite3.OperationalError):
        store.replace_records("order-7", [b"new one", b"new two"])
    monkeypatch.undo()
    store._connection.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "DELETE", "INSERT", "INSERT", "ROLLBACK"]
    assert store.read_records("order-7") == [b"old"]


# -- several processes ----------------------------------------------------------------------------
WRITER_SCRIPT = """
import sys, time
from pathlib import Path
from durable import SQLiteStateStore
path, name, go, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
while not go.exists():
    time.sleep(0.001)
store = SQLiteStateStore(path)  # several processes may create the file at once
ids = []
for n in range(count):
    store.append_record(name, f"{name} record {n}".encode())
    ids.append(store.append_event("shared", f"{name} event {n}".encode()))
print(" ".join(map(str, ids)))
"""


@pytest.mark.slow
def test_concurrent_appends_from_several_processes_all_land_in_order(tmp_path, db_path):
    go = tmp_path / "go"
    count, names = 40, ["writer-a", "writer-b", "writer-c"]
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER_SCRIPT, str(db_path), name, str(go), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    go.touch()
    ids_of = {}
    for name, writer in zip(names, writers, strict=True):
        stdout, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
        ids_of[name] = [int(token) for token in stdout.split()]
    store = SQLiteStateStore(db_path)
    for name in names:
        assert store.read_records(name) == [f"{name} record {n}".encode() for n in range(count)]
        assert ids_of[name] == sorted(set(ids_of[name]))  # each writer's ids grow
    events = store.read_events("shared")
    assert [event_id for event_id, _ in events] == sorted(sum(ids_of.values(), []))
    for name in names:  # FIFO per writer within the one inbox
        mine = [data for _, data in events if data.startswith(name.encode())]
        assert mine == [f"{name} event {n}".encode() for n in range(count)]
    assert store.list_instances() == names
    store.close()


FORK_SCRIPT = """
import os, sys
from durable import SQLiteStateStore
store = SQLiteStateStore(sys.argv[1])
store.append_record("order-7", b"parent before fork")
child = os.fork()
if child == 0:
    store.append_record("order-7", b"child")
    os._exit(0)
_, status = os.waitpid(child, 0)
assert status == 0, status
store.append_record("order-7", b"parent after fork")
print(store.read_records("order-7"))
"""


def test_a_forked_child_uses_its_own_connection(db_path):
    finished = run_python(FORK_SCRIPT, str(db_path))
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[b'parent before fork', b'child', b'parent after fork']"


# -- fault points ---------------------------------------------------------------------------------
FAULT_SCRIPT = """
import sys
from durable import SQLiteStateStore
store = SQLiteStateStore(sys.argv[1])
for n in range(1, 5):
    store.append_record("order-7", f"record {n}".encode())
print("no fault")
"""

REPLACE_FAULT_SCRIPT = """
import sys
from durable import SQLiteStateStore
store = SQLiteStateStore(sys.argv[1])
store.append_record("order-7", b"record 1")
store.append_record("order-7", b"record 2")
store.replace_records("order-7", [b"compacted 1", b"compacted 2"])
store.append_record("order-7", b"record 3")
print("no fault")
"""


def run_with_fault(script: str, db_path: Path, fault: str) -> subprocess.CompletedProcess:
    return run_python(script, str(db_path), DURABLE_FAULT=fault)


def records_after_the_crash(db_path: Path) -> list[bytes]:
    store = SQLiteStateStore(db_path)
    try:
        records = store.read_records("order-7")
        store.append_record("order-7", b"after the crash")  # the lock died with the process
        assert store.read_records("order-7") == [*records, b"after the crash"]
        return records
    finally:
        store.close()


@pytest.mark.parametrize(
    ("fault", "kept"),
    [
        ("before:1", 0),
        ("before:3", 2),
        ("after:1", 1),
        ("after:3", 3),
        ("torn:1", 0),
        ("torn:3", 2),
    ],
)
def test_a_fault_point_kills_the_process_and_only_acknowledged_records_remain(db_path, fault, kept):
    finished = run_with_fault(FAULT_SCRIPT, db_path, fault)
    assert finished.returncode == -signal.SIGKILL
    assert finished.stdout == ""
    assert records_after_the_crash(db_path) == [f"record {n}".encode() for n in range(1, kept + 1)]


@pytest.mark.parametrize(
    ("fault", "kept"),
    [
        ("before:3", [b"record 1", b"record 2"]),
        ("torn:3", [b"record 1", b"record 2"]),
        ("after:3", [b"compacted 1", b"compacted 2"]),
        ("torn:4", [b"compacted 1", b"compacted 2"]),
        ("after:4", [b"compacted 1", b"compacted 2", b"record 3"]),
    ],
)
def test_a_fault_point_in_a_compaction_keeps_the_old_log_or_the_new_one(db_path, fault, kept):
    finished = run_with_fault(REPLACE_FAULT_SCRIPT, db_path, fault)
    assert finished.returncode == -signal.SIGKILL
    assert records_after_the_crash(db_path) == kept


def test_a_torn_write_leaves_the_database_consistent(db_path):
    run_with_fault(FAULT_SCRIPT, db_path, "torn:2")
    assert raw(db_path, "PRAGMA integrity_check") == [("ok",)]
    assert raw(db_path, "SELECT instance_id FROM instances") == [("order-7",)]


@pytest.mark.slow
def test_a_fault_point_past_the_last_write_changes_nothing(db_path):
    finished = run_with_fault(FAULT_SCRIPT, db_path, "after:5")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "no fault"
    assert len(SQLiteStateStore(db_path).read_records("order-7")) == 4


EVENT_FAULT_SCRIPT = """
import sys
from durable import SQLiteStateStore
store = SQLiteStateStore(sys.argv[1])
store.append_event("order-7", b"an event is not a counted write")
store.append_record("order-7", b"record 1")
"""


def test_fault_points_count_record_writes_only(db_path):
    finished = run_with_fault(EVENT_FAULT_SCRIPT, db_path, "before:1")
    assert finished.returncode == -signal.SIGKILL
    store = SQLiteStateStore(db_path)
    assert [data for _, data in store.read_events("order-7")] == [
        b"an event is not a counted write"
    ]
    assert store.read_records("order-7") == []
    store.close()


# -- store URLs -----------------------------------------------------------------------------------
def test_sqlite_url_with_three_slashes_is_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = store_from_url("sqlite:///data/app.db")
    assert isinstance(store, SQLiteStateStore)
    assert store.path == Path("data/app.db")
    assert (tmp_path / "data" / "app.db").is_file()
    store.close()


def test_sqlite_url_with_four_slashes_is_an_absolute_path(tmp_path):
    path = tmp_path / "app.db"
    assert path.is_absolute()
    store = store_from_url(f"sqlite:///{path}")
    assert store.path == path
    assert path.is_file()
    store.close()


def test_sqlite_url_decodes_percent_escapes(tmp_path):
    store = store_from_url(f"sqlite:///{tmp_path}/my%20store.db")
    assert store.path == tmp_path / "my store.db"
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite://host/app.db",
        "sqlite:app.db",
        "sqlite:///app.db?mode=ro",
        "sqlite:///app.db#x",
        "sqlite:///dir/",
        "sqlite:///:memory:",
    ],
)
def test_a_malformed_sqlite_url_is_refused_showing_both_forms(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as caught:
        store_from_url(url)
    message = str(caught.value)
    assert repr(url) in message
    assert "sqlite:///app.db" in message and "sqlite:////var/lib/app.db" in message
    assert list(tmp_path.iterdir()) == []


def test_an_unsupported_store_url_lists_the_sqlite_forms():
    with pytest.raises(ValueError, match="sqlite:///relative/path.db or sqlite:////absolute"):
        store_from_url("redis://localhost:6379")


# -- end to end: a durable function paused and resumed over SQLite --------------------------------
CHARGES: list[str] = []


def charge(order: str) -> str:
    CHARGES.append(order)
    return f"receipt for {order}"


@make_durable
async def ship(order: str):
    receipt = await durable.durable_execute(charge, order)
    raise PauseForEventException("go")
    return f"shipped {order} with {receipt}"


async def test_a_paused_instance_resumes_over_new_backend_objects(db_path):
    CHARGES.clear()
    with pytest.raises(PauseForEventException) as paused:
        await ship(
            "order-7",
            orchestration_backend=DurableBackend(SQLiteStateStore(db_path)),
            instance_id="order-7",
        )
    assert paused.value.event == "go"
    assert CHARGES == ["order-7"]
    DurableBackend(SQLiteStateStore(db_path)).publish_event("order-7", "go")
    backend = DurableBackend(SQLiteStateStore(db_path))
    result = await ship("order-7", orchestration_backend=backend, instance_id="order-7")
    assert result == "shipped order-7 with receipt for order-7"
    assert CHARGES == ["order-7"]  # the step ran once; its result came from the journal
    assert backend.store.read_events("order-7") == []
    again = DurableBackend(SQLiteStateStore(db_path))
    assert await ship("order-7", orchestration_backend=again, instance_id="order-7") == result


FLOW_MODULE = """
import durable
from durable import PauseForEventException, make_durable


def charge(order, ledger):
    with open(ledger, "a") as file:
        file.write(order + "\\n")
    return f"receipt for {order}"


@make_durable
async def ship(order, ledger):
    receipt = await durable.durable_execute(charge, order, ledger)
    raise PauseForEventException("go")
    return f"shipped {order} with {receipt}"
"""

FLOW_SCRIPT = """
import asyncio, sys
import durable
from ship_flow import ship

async def main():
    try:
        print(await ship("order-7", sys.argv[1], instance_id="order-7"))
    except durable.PauseForEventException as pause:
        print("paused for", pause.event)

asyncio.run(main())
"""


@pytest.mark.slow
def test_a_paused_instance_resumes_in_another_process_through_durable_store(tmp_path, db_path):
    (tmp_path / "ship_flow.py").write_text(FLOW_MODULE)
    ledger = str(tmp_path / "ledger.txt")
    pythonpath = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    # The absolute form for the first process, the relative form (from tmp_path) for the second.
    first = run_python(
        FLOW_SCRIPT,
        ledger,
        cwd=tmp_path,
        PYTHONPATH=pythonpath,
        DURABLE_STORE=f"sqlite:///{db_path}",
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "paused for go"
    DurableBackend(SQLiteStateStore(db_path)).publish_event("order-7", "go")
    second = run_python(
        FLOW_SCRIPT, ledger, cwd=tmp_path, PYTHONPATH=pythonpath, DURABLE_STORE="sqlite:///store.db"
    )
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "shipped order-7 with receipt for order-7"
    assert Path(ledger).read_text() == "order-7\n"


# -- the index of instances: summaries, due instances, wake-up times ------------------------------
def summary_row(db_path: Path, instance_id: str) -> tuple | None:
    rows = raw_params(
        db_path,
        "SELECT status, waiting_for, wake_at FROM instances WHERE instance_id = ?",
        (instance_id,),
    )
    return rows[0] if rows else None


def raw_params(path: Path, sql: str, parameters: tuple) -> list:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def test_a_write_with_a_summary_keeps_it_in_the_instance_row(store, db_path):
    store.append_record("order-7", b"start", InstanceSummary("enqueued"))
    assert summary_row(db_path, "order-7") == ("enqueued", None, None)
    store.append_record("order-7", b"park", InstanceSummary("waiting", "approve", 1234.5))
    assert summary_row(db_path, "order-7") == ("waiting", "approve", 1234.5)
    assert store.summary("order-7") == InstanceSummary("waiting", "approve", 1234.5)
    # A write that does not set the status leaves the summary as it was.
    store.append_record("order-7", b"no status")
    assert summary_row(db_path, "order-7") == ("waiting", "approve", 1234.5)
    store.replace_records("order-7", [b"compacted"])
    assert summary_row(db_path, "order-7") == ("waiting", "approve", 1234.5)
    # A compaction with a summary sets it, waiting_for and wake_at included.
    store.replace_records("order-7", [b"compacted"], InstanceSummary("completed"))
    assert summary_row(db_path, "order-7") == ("completed", None, None)
    # A new instance written without a summary is unknown.
    store.append_record("order-8", b"raw")
    assert summary_row(db_path, "order-8") == (None, None, None)
    assert store.summary("order-8") is None
    assert store.summary("nobody") is None


def test_the_summary_is_written_in_the_transaction_of_its_record(store, db_path):
    store.append_record("order-7", b"old", InstanceSummary("running"))
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    store.append_record("order-7", b"park", InstanceSummary("waiting", "go", 99.0))
    store._connection.set_trace_callback(None)
    assert [s.split()[0] for s in statements] == ["BEGIN", "INSERT", "INSERT", "COMMIT"]
    # A record that cannot be written leaves the summary of the last one that was.
    store._connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    with pytest.raises(sqlite3.DataError):
        store.append_record("order-7", b"x" * 2000, InstanceSummary("completed"))
    with pytest.raises(sqlite3.DataError):
        store.replace_records("order-7", [b"x" * 2000], InstanceSummary("completed"))
    assert summary_row(db_path, "order-7") == ("waiting", "go", 99.0)
    assert store.due_instances(now=50.0) == []


def test_due_instances_are_the_enqueued_running_and_unknown_ones(store):
    store.append_record("enqueued-1", b"r", InstanceSummary("enqueued"))
    store.append_record("running-1", b"r", InstanceSummary("running"))
    store.append_record("completed-1", b"r", InstanceSummary("completed"))
    store.append_record("failed-1", b"r", InstanceSummary("failed"))
    store.append_record("unknown-1", b"r")  # no summary: a row of an older file, say
    store.append_record("waiting-1", b"r", InstanceSummary("waiting", "go"))
    assert sorted(store.due_instances(now=time.time())) == ["enqueued-1", "running-1", "unknown-1"]


def test_a_waiting_instance_is_due_once_its_wake_up_time_has_come(store):
    store.append_record("timer-1", b"r", InstanceSummary("waiting", "go", 100.0))
    store.append_record("no-timeout", b"r", InstanceSummary("waiting", "go", None))
    assert store.due_instances(now=99.9) == []
    assert store.due_instances(now=100.0) == ["timer-1"]
    assert store.due_instances(now=1e12) == ["timer-1"]


def test_a_waiting_instance_is_due_while_an_event_is_in_its_inbox(store):
    store.append_record("waiting-1", b"r", InstanceSummary("waiting", "go", None))
    store.append_record("done-1", b"r", InstanceSummary("completed"))
    store.append_event("done-1", b"late event")  # finished: its inbox does not make it due
    store.append_event("nobody", b"event for an instance that does not exist")
    assert store.due_instances(now=0.0) == []
    first = store.append_event("waiting-1", b"one")
    second = store.append_event("waiting-1", b"two")
    # Any event: the store cannot read names (see _DUE_INSTANCES); listed once.
    assert store.due_instances(now=0.0) == ["waiting-1"]
    store.delete_events("waiting-1", [first, second])
    assert store.due_instances(now=0.0) == []


def test_due_instances_come_running_first_then_least_recently_written_up_to_the_limit(store):
    for name in ("c", "a", "b"):
        store.append_record(name, b"r", InstanceSummary("enqueued"))
    assert store.due_instances(now=0.0) == ["c", "a", "b"]
    store.append_record("c", b"again", InstanceSummary("enqueued"))
    assert store.due_instances(now=0.0) == ["a", "b", "c"]
    assert store.due_instances(now=0.0, limit=2) == ["a", "b"]
    # A running instance (a crashed runner's, maybe) comes before any other work.
    store.append_record("c", b"runs", InstanceSummary("running"))
    assert store.due_instances(now=0.0) == ["c", "a", "b"]
    assert store.due_instances(now=0.0, limit=1) == ["c"]
    store.delete_instance("a")
    assert store.due_instances(now=0.0) == ["c", "b"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            store.due_instances(now=0.0, limit=bad)


def test_next_wake_at_is_the_earliest_wake_up_time_of_a_waiting_instance(store):
    assert store.next_wake_at() is None
    store.append_record("no-timeout", b"r", InstanceSummary("waiting", "go", None))
    store.append_record("running-1", b"r", InstanceSummary("running"))
    assert store.next_wake_at() is None
    store.append_record("later", b"r", InstanceSummary("waiting", "go", 300.0))
    store.append_record("sooner", b"r", InstanceSummary("waiting", "go", 200.0))
    assert store.next_wake_at() == 200.0
    # `after`: the first one still to come (a due one is the worker's to run, not to wait for).
    assert store.next_wake_at(after=200.0) == 300.0
    assert store.next_wake_at(after=300.0) is None
    store.append_record("sooner", b"done", InstanceSummary("completed"))
    assert store.next_wake_at() == 300.0


def test_fill_summaries_records_only_summaries_the_store_does_not_know(store, db_path):
    store.append_record("unknown-1", b"r")
    store.append_record("unknown-2", b"r")
    store.append_record("known-1", b"r", InstanceSummary("waiting", "go", 5.0))
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    filled = store.fill_summaries(
        {
            "unknown-1": InstanceSummary("completed"),
            "unknown-2": InstanceSummary("waiting", "approve", 7.0),
            "known-1": InstanceSummary("completed"),  # read before a write: stale
        }
    )
    assert filled == ["unknown-1", "unknown-2"]
    assert sum(s == "BEGIN IMMEDIATE" for s in statements) == 1
    assert summary_row(db_path, "unknown-1") == ("completed", None, None)
    assert summary_row(db_path, "unknown-2") == ("waiting", "approve", 7.0)
    assert summary_row(db_path, "known-1") == ("waiting", "go", 5.0)
    # Which summaries are unknown is read first; the write is one transaction.
    begin = statements.index("BEGIN IMMEDIATE")
    assert statements[begin + 1].startswith("UPDATE instances") and statements[-1] == "COMMIT"
    # Nothing unknown left: no write transaction at all.
    statements.clear()
    assert store.fill_summaries({"unknown-1": InstanceSummary("running")}) == []
    assert store.fill_summaries({}) == []
    store._connection.set_trace_callback(None)
    assert not any(s.startswith("BEGIN") for s in statements)
    assert summary_row(db_path, "unknown-1") == ("completed", None, None)


def query_plan(store: SQLiteStateStore, sql: str, parameters) -> list[str]:
    return [row[3] for row in store._connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters)]


def test_the_due_query_and_next_wake_at_search_the_status_index(store):
    for n in range(200):
        status = ("enqueued", "running", "waiting", "completed")[n % 4]
        store.append_record(f"i-{n}", b"r", InstanceSummary(status, None, float(n)))
    store.append_event("i-2", b"event")
    due = query_plan(store, sqlite_module._DUE_INSTANCES, {"now": 100.0, "limit": 1000})
    # Every part over `instances` by status is a search of the (status, wake_at) index...
    searches = [d for d in due if "instances_by_status" in d]
    assert len(searches) == 3, due
    assert all(d.startswith("SEARCH instances USING") for d in searches), due
    assert any("(status=? AND wake_at<?)" in d for d in searches), due
    # ...the events part looks instances up by key, and nothing scans the instances table.
    assert any(d.startswith("SEARCH i USING") and "(instance_id=?)" in d for d in due), due
    assert not any(d.startswith(("SCAN instances", "SCAN i ")) or d == "SCAN i" for d in due), due
    wake = query_plan(store, sqlite_module._NEXT_WAKE_AT, {"after": 100.0})
    assert wake == [
        "SEARCH instances USING COVERING INDEX instances_by_status (status=? AND wake_at>?)"
    ]
    wake_any = query_plan(store, sqlite_module._NEXT_WAKE_AT_ANY, ())
    assert len(wake_any) == 1 and "USING COVERING INDEX instances_by_status" in wake_any[0]


# -- schema 1 files: migrated when opened --------------------------------------------------------
#: The schema of version 1, as durable wrote it before the index.
SCHEMA_1 = (
    """CREATE TABLE records (
        instance_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (instance_id, position)
    )""",
    """CREATE TABLE events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL,
        data BLOB NOT NULL
    )""",
    "CREATE INDEX events_by_instance ON events (instance_id, event_id)",
    """CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    )""",
    f"PRAGMA application_id = {sqlite_module.APPLICATION_ID}",
    "PRAGMA user_version = 1",
)


def make_schema_1_store(path: Path) -> None:
    """A store file as durable's schema 1 wrote it, with two instances and an event."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for statement in SCHEMA_1:
            connection.execute(statement)
        for instance_id, records in (("order-7", [b"one", b"two"]), ("order-8", [b"only"])):
            for position, data in enumerate(records):
                connection.execute(
                    "INSERT INTO records VALUES (?, ?, ?)", (instance_id, position, data)
                )
            connection.execute("INSERT INTO instances VALUES (?, 10.0, 20.0)", (instance_id,))
        connection.execute("INSERT INTO events (instance_id, data) VALUES ('order-7', x'676f')")
        connection.execute("COMMIT")
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()


def columns_of(path: Path, table: str) -> list[str]:
    return [row[1] for row in raw(path, f"PRAGMA table_info({table})")]


def test_a_schema_1_store_is_migrated_when_opened_keeping_its_data(db_path):
    make_schema_1_store(db_path)
    assert raw(db_path, "PRAGMA user_version") == [(1,)]
    store = SQLiteStateStore(db_path)
    assert raw(db_path, "PRAGMA user_version") == [(sqlite_module.SCHEMA_VERSION,)]
    assert columns_of(db_path, "instances") == [
        "instance_id",
        "created_at",
        "updated_at",
        "status",
        "waiting_for",
        "wake_at",
        "head",
    ]
    indexes = {name for (name,) in raw(db_path, "SELECT name FROM sqlite_master")}
    assert "instances_by_status" in indexes
    assert raw(db_path, "PRAGMA integrity_check") == [("ok",)]
    # Everything kept; the summaries are unknown, so both instances are due (not stranded).
    assert store.read_records("order-7") == [b"one", b"two"]
    assert store.read_records("order-8") == [b"only"]
    assert [data for _, data in store.read_events("order-7")] == [b"go"]
    assert raw(db_path, "SELECT instance_id, created_at, updated_at, status FROM instances") == [
        ("order-7", 10.0, 20.0, None),
        ("order-8", 10.0, 20.0, None),
    ]
    assert store.due_instances(now=time.time()) == ["order-7", "order-8"]
    # Written by this version: the summary is known, and the instance due no more.
    store.append_record("order-8", b"done", InstanceSummary("completed"))
    assert store.due_instances(now=time.time()) == ["order-7"]
    store.close()
    again = SQLiteStateStore(db_path)  # the current version now: opened as it is
    assert again.read_records("order-8") == [b"only", b"done"]
    again.close()


def test_a_migration_that_fails_leaves_the_schema_1_file_as_it_was(db_path, monkeypatch):
    make_schema_1_store(db_path)
    before = raw(db_path, "SELECT * FROM instances")
    failing = (*sqlite_module._MIGRATIONS[1], "THIS IS NOT SQL")
    monkeypatch.setitem(sqlite_module._MIGRATIONS, 1, failing)
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStateStore(db_path)
    # All of it or nothing: the columns added before the failure were rolled back.
    assert raw(db_path, "PRAGMA user_version") == [(1,)]
    assert columns_of(db_path, "instances") == ["instance_id", "created_at", "updated_at"]
    assert raw(db_path, "SELECT * FROM instances") == before
    monkeypatch.undo()
    store = SQLiteStateStore(db_path)
    assert raw(db_path, "PRAGMA user_version") == [(sqlite_module.SCHEMA_VERSION,)]
    assert store.read_records("order-7") == [b"one", b"two"]
    store.close()


MIGRATE_SCRIPT = """
import sys, time
from pathlib import Path
from durable import SQLiteStateStore
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.001)
store = SQLiteStateStore(sys.argv[1])
print(store.read_records("order-7"))
"""


@pytest.mark.slow
def test_several_processes_opening_a_schema_1_store_at_once_migrate_it_once(tmp_path, db_path):
    make_schema_1_store(db_path)
    go = tmp_path / "go"
    openers = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_SCRIPT, str(db_path), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    go.touch()
    for opener in openers:
        stdout, stderr = opener.communicate(timeout=120)
        assert opener.returncode == 0, stderr
        assert stdout.strip() == "[b'one', b'two']"
    assert raw(db_path, "PRAGMA user_version") == [(sqlite_module.SCHEMA_VERSION,)]
    assert columns_of(db_path, "instances")[3:] == ["status", "waiting_for", "wake_at", "head"]


async def test_a_durable_backend_keeps_the_summary_of_each_instance(db_path):
    CHARGES.clear()
    backend = DurableBackend(SQLiteStateStore(db_path))
    store = backend.store
    with pytest.raises(PauseForEventException):
        await ship("order-7", orchestration_backend=backend, instance_id="order-7")
    assert store.summary("order-7") == InstanceSummary("waiting", "go", None)
    assert store.due_instances(now=time.time()) == []
    backend.publish_event("order-7", "go")
    assert store.due_instances(now=time.time()) == ["order-7"]
    await ship("order-7", orchestration_backend=backend, instance_id="order-7")
    assert store.summary("order-7") == InstanceSummary("completed", None, None)
    assert store.due_instances(now=time.time()) == []
    store.close()
