"""Heads: per instance, the latest head given with a record write, never ahead of the records.

What the contract suite cannot show: where each store keeps its heads, that they survive the
store object, how the disk store's head file lags its log (appends stay one data sync), that
a damaged head file is refused, and that a store that knows nothing of heads is unaffected.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from durable import (
    CorruptStateError,
    DiskStateStore,
    DurableBackend,
    SQLiteStateStore,
    StateStore,
    durable_execute,
    make_durable,
)
from durable.stores import disk

from .test_sqlite_store import raw


# -- SQLite: the head is a column of the instance's row, written with the record ---------------
@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "store.db"


def test_an_sqlite_head_survives_a_new_store_object(db_path):
    store = SQLiteStateStore(db_path)
    store.append_record("order-7", b"one", head=b"head of one")
    store.replace_records("order-8", [b"compacted"], head=b"head of the compacted log")
    store.close()
    again = SQLiteStateStore(db_path)
    assert again.read_head("order-7") == b"head of one"
    assert again.read_head("order-8") == b"head of the compacted log"
    again.close()


def test_an_sqlite_head_is_in_the_instances_row(db_path):
    store = SQLiteStateStore(db_path)
    store.append_record("order-7", b"one", head=b"head of one")
    store.close()
    assert raw(db_path, "SELECT instance_id, head FROM instances") == [("order-7", b"head of one")]


def test_an_sqlite_record_and_its_head_are_written_in_one_transaction(db_path):
    store = SQLiteStateStore(db_path, group_commit=False)
    store.append_record("order-7", b"zero")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    for write in (
        lambda: store.append_record("order-7", b"one", head=b"head of one"),
        lambda: store.replace_records("order-7", [b"compacted"], head=b"head of compacted"),
    ):
        statements.clear()
        write()
        assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
        assert sum(s.startswith(("BEGIN", "COMMIT", "ROLLBACK")) for s in statements) == 2
    store._connection.set_trace_callback(None)
    store.close()


async def test_sqlite_group_commits_keep_the_head_of_each_instances_last_append(db_path):
    store = SQLiteStateStore(db_path)

    async def run(instance_id: str) -> None:
        for n in range(20):
            await store.append_record(instance_id, f"{n}".encode(), head=f"head {n}".encode())

    await asyncio.gather(*(run(f"order-{i}") for i in range(8)))
    for i in range(8):
        assert store.read_head(f"order-{i}") == b"head 19"
        assert len(store.read_records(f"order-{i}")) == 20
    store.close()


def test_an_sqlite_delete_instance_removes_the_head_with_its_row(db_path):
    store = SQLiteStateStore(db_path)
    store.append_record("order-7", b"one", head=b"head of one")
    store.delete_instance("order-7")
    store.close()
    assert raw(db_path, "SELECT * FROM instances") == []


# -- the disk store: a head file, written whole, that may lag the log --------------------------
@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


def head_file(store_dir: Path, instance_id: str) -> Path:
    return store_dir / "state" / f"{instance_id}.log.head"


def test_a_disk_head_given_with_a_new_log_is_in_its_head_file(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head of first")
    assert disk.unframe(head_file(store_dir, "order-7").read_bytes(), "head") == b"head of first"
    assert DiskStateStore(store_dir).read_head("order-7") == b"head of first"


def test_a_disk_head_given_with_a_compaction_survives_a_new_store_object(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first")
    store.replace_records("order-7", [b"compacted"], head=b"head of compacted")
    assert DiskStateStore(store_dir).read_head("order-7") == b"head of compacted"


def test_a_disk_append_leaves_the_head_file_alone_until_the_lease_is_released(store_dir):
    store = DiskStateStore(store_dir)
    assert store.acquire_lease("order-7", "test") is None
    store.append_record("order-7", b"first", head=b"head 1")
    store.append_record("order-7", b"second", head=b"head 2")
    assert store.read_head("order-7") == b"head 2"  # this store object knows it
    assert DiskStateStore(store_dir).read_head("order-7") == b"head 1"  # the file lags
    store.release_lease("order-7", "test")
    assert DiskStateStore(store_dir).read_head("order-7") == b"head 2"


def test_closing_a_disk_store_writes_the_heads_of_its_last_appends(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head 1")
    store.append_record("order-7", b"second", head=b"head 2")
    store.append_record("order-8", b"first", head=b"head of eight")
    store.append_record("order-8", b"second", head=b"head 2 of eight")
    store.close()
    again = DiskStateStore(store_dir)
    assert again.read_head("order-7") == b"head 2"
    assert again.read_head("order-8") == b"head 2 of eight"


def test_a_disk_compaction_writes_the_head_of_the_last_append_when_given_none(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head 1")
    store.append_record("order-7", b"second", head=b"head 2")
    store.replace_records("order-7", [b"first", b"second"])
    assert DiskStateStore(store_dir).read_head("order-7") == b"head 2"


def test_a_disk_append_with_a_head_is_still_one_data_sync(store_dir, monkeypatch):
    store = DiskStateStore(store_dir)
    assert store.acquire_lease("order-7", "test") is None
    store.append_record("order-7", b"first", head=b"head 1")
    synced: list[str] = []
    real_fsync, real_sync_data = disk.os.fsync, disk._sync_data
    monkeypatch.setattr(disk.os, "fsync", lambda fd: (synced.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(disk, "_sync_data", lambda fd: (synced.append("data"), real_sync_data(fd)))
    before = head_file(store_dir, "order-7").read_bytes()
    store.append_record("order-7", b"second", head=b"head 2")
    assert synced == ["data"]
    assert head_file(store_dir, "order-7").read_bytes() == before
    store.release_lease("order-7", "test")


def test_a_disk_delete_instance_removes_the_head_file(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head 1")
    store.append_record("order-7", b"second", head=b"head 2")
    store.delete_instance("order-7")
    assert not head_file(store_dir, "order-7").exists()
    store.close()
    assert not head_file(store_dir, "order-7").exists()  # nor written back at close
    assert DiskStateStore(store_dir).read_head("order-7") is None


def test_a_disk_head_file_left_without_its_log_is_not_the_head_of_a_new_log(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head of the old log")
    # As a deletion cut short leaves it: the log gone, the head file not yet.
    (store_dir / "state" / "order-7.log").unlink()
    again = DiskStateStore(store_dir)
    again.append_record("order-7", b"a new first record")
    assert again.read_head("order-7") is None
    assert DiskStateStore(store_dir).read_head("order-7") is None


def test_the_head_file_is_not_taken_for_an_instance(store_dir):
    store = DiskStateStore(store_dir)
    store.append_record("order-7", b"first", head=b"head")
    assert store.list_instances() == ["order-7"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-3],
        lambda data: data[:-2] + bytes([data[-2] ^ 0x01]) + data[-1:],
        lambda data: b"GARBAGE!" + data[8:],
        lambda data: b"",
    ],
    ids=["truncated", "flipped", "bad magic", "empty"],
)
def test_a_damaged_disk_head_file_is_refused_naming_the_instance(store_dir, damage):
    DiskStateStore(store_dir).append_record("order-7", b"first", head=b"the head of order-7")
    path = head_file(store_dir, "order-7")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(CorruptStateError) as caught:
        DiskStateStore(store_dir).read_head("order-7")
    assert "instance 'order-7'" in str(caught.value) and str(path) in str(caught.value)


# -- a store that knows nothing of heads --------------------------------------------------------
class RecordsOnlyStore(StateStore):
    """A custom store written before heads: its writes take no `head`."""

    def __init__(self) -> None:
        self.logs: dict[str, list[bytes]] = {}
        self.events: dict[str, dict[int, bytes]] = {}
        self.next_event_id = 0

    def read_records(self, instance_id: str) -> list[bytes]:
        return list(self.logs.get(instance_id, []))

    def append_record(self, instance_id: str, record: bytes, summary=None) -> None:
        self.logs.setdefault(instance_id, []).append(bytes(record))

    def replace_records(self, instance_id: str, records: Sequence[bytes], summary=None) -> None:
        self.logs[instance_id] = [bytes(record) for record in records]

    def delete_instance(self, instance_id: str) -> None:
        self.logs.pop(instance_id, None)
        self.events.pop(instance_id, None)

    def list_instances(self) -> list[str]:
        return sorted(self.logs)

    def append_event(self, instance_id: str, data: bytes) -> int:
        self.next_event_id += 1
        self.events.setdefault(instance_id, {})[self.next_event_id] = bytes(data)
        return self.next_event_id

    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        return sorted(self.events.get(instance_id, {}).items())

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        for event_id in event_ids:
            self.events.get(instance_id, {}).pop(event_id, None)


def test_a_custom_store_keeps_no_heads_and_reads_none():
    store = RecordsOnlyStore()
    store.append_record("order-7", b"record")
    assert store.keeps_heads is False
    assert store.read_head("order-7") is None


def add_one(n: int) -> int:
    return n + 1


@make_durable
async def three_steps():
    total = 0
    for n in range(3):
        total += await durable_execute(add_one, n)
    return total


@pytest.mark.parametrize("secret_key", [None, b"a key"], ids=["unsigned", "signed"])
async def test_a_custom_store_without_heads_runs_instances_to_completion(secret_key):
    store = RecordsOnlyStore()
    backend = DurableBackend(store, secret_key=secret_key)
    assert await three_steps(orchestration_backend=backend, instance_id="order-7") == 6
    assert store.logs["order-7"]  # written through the methods that take no head


async def test_a_signed_backend_gives_a_store_that_keeps_heads_a_head(tmp_path):
    store = DiskStateStore(tmp_path / "store")
    backend = DurableBackend(store, secret_key=b"a key")
    assert await three_steps(orchestration_backend=backend, instance_id="order-7") == 6
    store.close()
    assert os.path.exists(tmp_path / "store" / "state" / "order-7.log.head")
    assert DiskStateStore(tmp_path / "store").read_head("order-7") is not None
