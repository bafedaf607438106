"""Instance ids: one rule, applied by durable calls, `publish_event` and every store alike.

An id names files in a `DiskStateStore`, so anything that could name a path outside the
store (or a file the filesystem cannot hold) is refused before a byte is written.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    SQLiteStateStore,
    make_durable,
)

BAD_IDS = {
    "slash": "orders/7",
    "leading_slash": "/etc/passwd",
    "backslash": "orders\\7",
    "dotdot": "..",
    "dotdot_path": "../escape",
    "dotdot_inside_path": "a/../b",
    "nul": "order\x007",
    "newline": "order\n7",
    "tab": "order\t7",
    "unit_separator": "order\x1f7",
    "delete": "order\x7f7",
    "c1_control": "order\x857",
    "csi_control": "order\x9b7",
    "leading_dot": ".hidden",
    "single_dot": ".",
    "empty": "",
    "integer": 7,
    "bytes": b"order-7",
    "list": ["order-7"],
    "too_long": "x" * 201,
    "too_long_in_utf8_bytes": "\u00e9" * 200,
    "lone_surrogate": "order\ud8007",
}

GOOD_IDS = {
    "dash": "order-7",
    "colon": "a:b",
    "underscore_and_dot": "user_1.step",
    "longest": "x" * 200,
    "uuid_hex": "3f2a9c1e8b7d4e6fa0b1c2d3e4f50617",
    "unicode": "commande-\u00e9t\u00e9",
}

bad_ids = pytest.mark.parametrize("bad", list(BAD_IDS.values()), ids=list(BAD_IDS))
good_ids = pytest.mark.parametrize("good", list(GOOD_IDS.values()), ids=list(GOOD_IDS))

STORE_CALLS = {
    "read_records": lambda store, instance_id: store.read_records(instance_id),
    "append_record": lambda store, instance_id: store.append_record(instance_id, b"record"),
    "replace_records": lambda store, instance_id: store.replace_records(instance_id, [b"r"]),
    "delete_instance": lambda store, instance_id: store.delete_instance(instance_id),
    "append_event": lambda store, instance_id: store.append_event(instance_id, b"event"),
    "read_events": lambda store, instance_id: store.read_events(instance_id),
    "delete_events": lambda store, instance_id: store.delete_events(instance_id, [1]),
}

store_calls = pytest.mark.parametrize("call", list(STORE_CALLS.values()), ids=list(STORE_CALLS))


@make_durable
async def double(value):
    return value * 2


@pytest.fixture
def store_dir(tmp_path) -> Path:
    # Nested, so an id that escaped the store would land in tmp_path / "root".
    return tmp_path / "root" / "store"


@pytest.fixture
def store(store_dir) -> DiskStateStore:
    return DiskStateStore(store_dir)


@pytest.fixture
def sqlite_store(tmp_path):
    store = SQLiteStateStore(tmp_path / "store.db")
    yield store
    store.close()


def sqlite_rows(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as connection:
        return {
            table: connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("records", "events", "instances")
        }


def assert_names_the_id(error: pytest.ExceptionInfo, bad) -> None:
    assert repr(bad) in str(error.value)


def store_files(tmp_path: Path) -> list[Path]:
    return sorted(path for path in tmp_path.rglob("*") if path.is_file())


def assert_nothing_written(tmp_path: Path, store_dir: Path) -> None:
    assert store_files(tmp_path) == []
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [
        Path("root"),
        Path("root/store"),
        Path("root/store/events"),
        Path("root/store/state"),
    ]


# -- refused ------------------------------------------------------------------------------------
@bad_ids
async def test_bad_instance_id_is_rejected_by_a_durable_call(bad, store):
    backend = DurableBackend(store)
    with pytest.raises(ValueError, match="invalid instance_id") as caught:
        await double(21, orchestration_backend=backend, instance_id=bad)
    assert_names_the_id(caught, bad)


@bad_ids
async def test_bad_instance_id_in_a_durable_call_writes_nothing(bad, tmp_path, store, store_dir):
    with pytest.raises(ValueError):
        await double(21, orchestration_backend=DurableBackend(store), instance_id=bad)
    assert_nothing_written(tmp_path, store_dir)


@bad_ids
def test_bad_instance_id_is_rejected_by_publish_event(bad, store):
    backend = DurableBackend(store)
    with pytest.raises(ValueError, match="invalid instance_id") as caught:
        backend.publish_event(bad, "approved", {"by": "ada"})
    assert_names_the_id(caught, bad)


@bad_ids
def test_bad_instance_id_in_publish_event_writes_nothing(bad, tmp_path, store, store_dir):
    with pytest.raises(ValueError):
        DurableBackend(store).publish_event(bad, "approved")
    assert_nothing_written(tmp_path, store_dir)


@bad_ids
def test_bad_instance_id_in_publish_event_to_a_memory_store_is_rejected(bad):
    backend = DurableBackend(InMemoryStateStore())
    with pytest.raises(ValueError, match="invalid instance_id"):
        backend.publish_event(bad, "approved")
    assert backend.store.list_instances() == []


@bad_ids
@store_calls
def test_bad_instance_id_is_rejected_by_the_disk_store(bad, call, store):
    with pytest.raises(ValueError, match="invalid instance_id") as caught:
        call(store, bad)
    assert_names_the_id(caught, bad)


@bad_ids
@store_calls
def test_bad_instance_id_in_the_disk_store_creates_nothing_outside_it(
    bad, call, tmp_path, store, store_dir
):
    with pytest.raises(ValueError):
        call(store, bad)
    assert_nothing_written(tmp_path, store_dir)


@bad_ids
def test_bad_instance_id_is_rejected_by_memory_store_writes(bad):
    store = InMemoryStateStore()
    with pytest.raises(ValueError, match="invalid instance_id"):
        store.append_record(bad, b"record")
    with pytest.raises(ValueError, match="invalid instance_id"):
        store.append_event(bad, b"event")
    assert store.list_instances() == []


@bad_ids
@store_calls
def test_bad_instance_id_is_rejected_by_the_sqlite_store(bad, call, sqlite_store):
    with pytest.raises(ValueError, match="invalid instance_id") as caught:
        call(sqlite_store, bad)
    assert_names_the_id(caught, bad)


@bad_ids
@store_calls
def test_bad_instance_id_in_the_sqlite_store_writes_nothing(bad, call, tmp_path, sqlite_store):
    with pytest.raises(ValueError):
        call(sqlite_store, bad)
    sqlite_store.close()
    assert sqlite_rows(tmp_path / "store.db") == {"records": 0, "events": 0, "instances": 0}
    assert {path.name for path in tmp_path.iterdir()} <= {
        "store.db",
        "store.db-wal",
        "store.db-shm",
    }


@bad_ids
def test_bad_instance_id_in_publish_event_to_a_sqlite_store_is_rejected(
    bad, tmp_path, sqlite_store
):
    with pytest.raises(ValueError, match="invalid instance_id"):
        DurableBackend(sqlite_store).publish_event(bad, "approved")
    assert sqlite_rows(tmp_path / "store.db") == {"records": 0, "events": 0, "instances": 0}


def test_rejection_explains_what_an_id_may_contain(store):
    with pytest.raises(ValueError, match="letters, digits") as caught:
        store.append_record("orders/7", b"record")
    assert "'/'" in str(caught.value)


# -- accepted -----------------------------------------------------------------------------------
@good_ids
async def test_good_instance_id_is_accepted_by_a_durable_call(good, store):
    backend = DurableBackend(store)
    assert await double(21, orchestration_backend=backend, instance_id=good) == 42
    assert store.list_instances() == [good]


@good_ids
async def test_good_instance_id_returns_its_stored_result_from_a_new_store(good, store_dir):
    await double(
        21, orchestration_backend=DurableBackend(DiskStateStore(store_dir)), instance_id=good
    )
    backend = DurableBackend(DiskStateStore(store_dir))
    assert await double(21, orchestration_backend=backend, instance_id=good) == 42


@good_ids
def test_good_instance_id_is_accepted_by_publish_event(good, store):
    backend = DurableBackend(store)
    backend.publish_event(good, "approved", {"by": "ada"})
    assert [(e.name, e.payload) for e in backend.pending_events(good)] == [
        ("approved", {"by": "ada"})
    ]


@good_ids
def test_good_instance_id_round_trips_through_the_disk_store(good, store):
    store.append_record(good, b"record")
    event_id = store.append_event(good, b"event")
    assert store.read_records(good) == [b"record"]
    assert store.read_events(good) == [(event_id, b"event")]
    assert store.list_instances() == [good]


@good_ids
def test_good_instance_id_round_trips_through_the_sqlite_store(good, tmp_path, sqlite_store):
    sqlite_store.append_record(good, b"record")
    event_id = sqlite_store.append_event(good, b"event")
    again = SQLiteStateStore(tmp_path / "store.db")
    assert again.read_records(good) == [b"record"]
    assert again.read_events(good) == [(event_id, b"event")]
    assert again.list_instances() == [good]
    again.delete_instance(good)
    assert sqlite_rows(tmp_path / "store.db") == {"records": 0, "events": 0, "instances": 0}
    again.close()


@good_ids
def test_good_instance_id_keeps_its_files_inside_the_store_directory(
    good, tmp_path, store, store_dir
):
    store.append_record(good, b"record")
    store.append_event(good, b"event")
    assert all(store_dir in path.parents for path in store_files(tmp_path))
    assert len(store_files(tmp_path)) == 2


@good_ids
def test_good_instance_id_is_forgotten_completely_by_delete_instance(good, tmp_path, store):
    store.append_record(good, b"record")
    store.append_event(good, b"event")
    store.delete_instance(good)
    assert store_files(tmp_path) == []
