"""Damage to stored bytes is refused naming the instance; only a torn tail is ever dropped.

Disk store: a record damaged in the middle of a log (a length field, its magic, its format)
is `CorruptStateError`, even when its length field makes it look like an append that never
finished; a record cut short at the real end of the log still is one. SQLite store: every
record and event row carries a checksum, checked on each read, and SQLite's own damage
reports (extended result codes included) are `CorruptStateError` too.
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from pathlib import Path

import pytest

from durable import CorruptStateError, DiskStateStore, SQLiteStateStore
from durable.stores import disk
from durable.stores import sqlite as sqlite_module

from .test_sqlite_store import make_schema_1_store, raw

#: Five records of different lengths, as an instance's log holds them.
FIVE = [f"record {n} of order-7; ".encode() * (n + 3) for n in range(5)]
#: Where the length field sits in a record's header: after the magic and the format number.
LENGTH_AT = struct.calcsize(">8sH")
LENGTH = struct.Struct(">Q")


def refused(call, instance_id: str = "order-7") -> str:
    with pytest.raises(CorruptStateError) as caught:
        call()
    message = str(caught.value)
    assert f"instance {instance_id!r}" in message
    return message


# -- the disk store: damage in the middle of a log ---------------------------------------------
@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def log(store_dir) -> Path:
    """The log of order-7 holding `FIVE`, appended one by one."""
    store = DiskStateStore(store_dir)
    for record in FIVE:
        store.append_record("order-7", record)
    store.close()
    return store_dir / "state" / "order-7.log"


def start_of(number: int) -> int:
    """Where record `number` (from 1) of `FIVE` starts in its log."""
    return sum(len(disk.frame(record)) for record in FIVE[: number - 1])


def patch(path: Path, offset: int, data: bytes) -> None:
    contents = bytearray(path.read_bytes())
    contents[offset : offset + len(data)] = data
    path.write_bytes(bytes(contents))


def read(store_dir: Path) -> list[bytes]:
    return DiskStateStore(store_dir).read_records("order-7")


def damaged_length(number: int, change) -> int:
    return change(len(FIVE[number - 1]))


@pytest.mark.parametrize(
    "change",
    [
        lambda length: length + 1,
        lambda length: length + 100,
        lambda length: 1 << 40,
        lambda length: (1 << 64) - 1,
        lambda length: length - 1,
        lambda length: 0,
    ],
    ids=["one larger", "100 larger", "2**40", "largest", "one smaller", "zero"],
)
def test_a_damaged_length_field_of_a_middle_record_is_refused(store_dir, log, change):
    patch(log, start_of(2) + LENGTH_AT, LENGTH.pack(damaged_length(2, change)))
    message = refused(lambda: read(store_dir))
    assert "record 2" in message and str(log) in message


def test_a_length_field_running_past_the_end_of_the_log_names_the_intact_record_after_it(
    store_dir, log
):
    patch(log, start_of(2) + LENGTH_AT, LENGTH.pack(1 << 40))
    message = refused(lambda: read(store_dir))
    assert "record 2" in message and "length field" in message
    assert f"intact record at byte {start_of(3)}" in message
    assert "no append that never finished" in message


@pytest.mark.parametrize("number", [2, 3, 4])
def test_a_length_field_running_past_the_end_in_any_middle_record_is_refused(
    store_dir, log, number
):
    patch(log, start_of(number) + LENGTH_AT, LENGTH.pack(1 << 40))
    assert f"record {number}" in refused(lambda: read(store_dir))


@pytest.mark.parametrize("at", [0, 3, 7])
def test_a_flipped_byte_in_the_magic_of_a_middle_record_is_refused(store_dir, log, at):
    offset = start_of(3) + at
    patch(log, offset, bytes([log.read_bytes()[offset] ^ 0x20]))
    assert "record 3" in refused(lambda: read(store_dir))


def test_an_unknown_format_number_of_a_middle_record_is_refused(store_dir, log):
    patch(log, start_of(2) + 8, struct.pack(">H", 99))
    assert "record 2" in refused(lambda: read(store_dir))


def test_a_middle_record_overwritten_with_zeros_is_refused(store_dir, log):
    patch(log, start_of(2), bytes(len(disk.frame(FIVE[1]))))
    assert "record 2" in refused(lambda: read(store_dir))


def test_an_append_to_a_log_damaged_in_the_middle_is_refused_and_leaves_it_as_it_was(
    store_dir, log
):
    patch(log, start_of(2) + LENGTH_AT, LENGTH.pack(1 << 40))
    before = log.read_bytes()
    refused(lambda: DiskStateStore(store_dir).append_record("order-7", b"next"))
    assert log.read_bytes() == before


@pytest.mark.skipif(disk._allocate is None, reason="no posix_fallocate to reserve space with")
def test_a_damaged_length_field_of_a_middle_record_in_a_leased_log_is_refused(store_dir):
    store = DiskStateStore(store_dir)
    assert store.acquire_lease("order-7", "test") is None
    for record in FIVE:
        store.append_record("order-7", record)
    log = store_dir / "state" / "order-7.log"
    assert log.stat().st_size > start_of(6)  # reserved space (zeros) after the records
    patch(log, start_of(2) + LENGTH_AT, LENGTH.pack(len(FIVE[1]) + 3 * disk._RESERVE // 4))
    assert "record 2" in refused(lambda: read(store_dir))


# -- the disk store: what still is a torn tail ----------------------------------------------------
def test_the_last_record_cut_at_any_byte_is_dropped(store_dir, log):
    whole = log.read_bytes()
    last = disk.frame(FIVE[4])
    for cut in range(1, len(last)):
        log.write_bytes(whole[: start_of(5) + cut])
        assert read(store_dir) == FIVE[:4], f"cut {cut} bytes into the last record"


def test_the_last_record_partly_written_into_zeros_is_dropped(store_dir, log):
    whole = log.read_bytes()
    last = disk.frame(FIVE[4])
    for cut in range(1, len(last)):
        log.write_bytes(whole[: start_of(5) + cut] + bytes(4096))
        assert read(store_dir) == FIVE[:4], f"{cut} bytes of the last record written"


def test_the_last_record_with_a_length_past_the_end_is_taken_for_a_torn_tail(store_dir, log):
    # Nothing follows it to tell a damaged length field from an append cut short.
    patch(log, start_of(5) + LENGTH_AT, LENGTH.pack(1 << 40))
    assert read(store_dir) == FIVE[:4]


def test_a_torn_append_whose_payload_holds_a_whole_record_is_refused(store_dir, log):
    # The documented exception: the intact frame inside reads as an acknowledged record.
    torn = disk.frame(b"a step result that is a framed record: " + disk.frame(b"inner"))
    whole = log.read_bytes()
    log.write_bytes(whole + torn[:-1])
    assert "record 6" in refused(lambda: read(store_dir))


# -- the SQLite store: a checksum on every record and event ------------------------------------
@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def sqlite_store(db_path):
    store = SQLiteStateStore(db_path)
    yield store
    store.close()


def execute(path: Path, sql: str, parameters: tuple = ()) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute(sql, parameters)
    finally:
        connection.close()


def flipped(data: bytes, at: int) -> bytes:
    mutable = bytearray(data)
    mutable[at] ^= 0x04
    return bytes(mutable)


def test_records_and_events_are_written_with_the_crc32_of_their_bytes(sqlite_store, db_path):
    sqlite_store.append_record("order-7", FIVE[0])
    sqlite_store.replace_records("order-8", FIVE[1:3])
    sqlite_store.append_event("order-7", b"payment received")
    for table in ("records", "events"):
        for data, checksum in raw(db_path, f"SELECT data, checksum FROM {table}"):
            assert checksum == zlib.crc32(data)


@pytest.mark.parametrize("position", [0, 2, 4])
def test_a_flipped_bit_in_a_record_blob_is_refused_naming_its_position(
    sqlite_store, db_path, position
):
    for record in FIVE:
        sqlite_store.append_record("order-7", record)
    execute(
        db_path,
        "UPDATE records SET data = ? WHERE instance_id = 'order-7' AND position = ?",
        (flipped(FIVE[position], 5), position),
    )
    message = refused(lambda: sqlite_store.read_records("order-7"))
    assert f"position {position}" in message and "checksum" in message
    assert str(db_path) in message


def test_a_flipped_bit_in_a_records_checksum_is_refused(sqlite_store, db_path):
    for record in FIVE:
        sqlite_store.append_record("order-7", record)
    execute(
        db_path, "UPDATE records SET checksum = (checksum | 1) - (checksum & 1) WHERE position = 3"
    )
    assert "position 3" in refused(lambda: sqlite_store.read_records("order-7"))


def test_a_flipped_bit_in_an_event_blob_is_refused_naming_the_event(sqlite_store, db_path):
    sqlite_store.append_event("order-7", b"first event")
    event_id = sqlite_store.append_event("order-7", b"payment received")
    execute(
        db_path,
        "UPDATE events SET data = ? WHERE event_id = ?",
        (flipped(b"payment received", 0), event_id),
    )
    message = refused(lambda: sqlite_store.read_events("order-7"))
    assert f"event {event_id}" in message and "checksum" in message


def test_a_record_row_missing_from_the_middle_of_a_log_is_refused(sqlite_store, db_path):
    for record in FIVE:
        sqlite_store.append_record("order-7", record)
    execute(db_path, "DELETE FROM records WHERE instance_id = 'order-7' AND position = 2")
    message = refused(lambda: sqlite_store.read_records("order-7"))
    assert "record 3 of its log is at position 3" in message


def test_a_row_written_without_a_checksum_is_read_unchecked(sqlite_store, db_path):
    # As a process of an earlier version, still connected while the file was migrated,
    # writes it.
    execute(
        db_path,
        "INSERT INTO records (instance_id, position, data) VALUES ('order-7', 0, x'6f6e65')",
    )
    execute(db_path, "INSERT INTO events (instance_id, data) VALUES ('order-7', x'676f')")
    assert sqlite_store.read_records("order-7") == [b"one"]
    assert [data for _, data in sqlite_store.read_events("order-7")] == [b"go"]


def checkpointed_file_with(path: Path, write) -> bytes:
    """The bytes of the database file after `write(store)` and a close (which checkpoints
    the WAL into the file)."""
    store = SQLiteStateStore(path)
    write(store)
    store.close()
    assert not Path(f"{path}-wal").exists()
    return path.read_bytes()


def test_a_bit_flipped_in_the_file_inside_a_record_is_refused(db_path):
    payload = b"the saved call stack of order-7, " * 20
    data = checkpointed_file_with(db_path, lambda store: store.append_record("order-7", payload))
    at = data.index(payload) + 100
    db_path.write_bytes(flipped(data, at))
    store = SQLiteStateStore(db_path)
    try:
        assert "position 0" in refused(lambda: store.read_records("order-7"))
    finally:
        store.close()


def test_a_bit_flipped_in_the_file_inside_an_event_is_refused(db_path):
    payload = b"the payment of order-7 was received, " * 10
    data = checkpointed_file_with(db_path, lambda store: store.append_event("order-7", payload))
    db_path.write_bytes(flipped(data, data.index(payload) + 50))
    store = SQLiteStateStore(db_path)
    try:
        assert "event 1 failed its checksum" in refused(lambda: store.read_events("order-7"))
    finally:
        store.close()


# -- the SQLite store: SQLite's extended result codes ---------------------------------------------
def break_the_events_index(path: Path) -> None:
    """Make `events_by_instance` disagree with its table, as a damaged index page does:
    SQLite then fails deletions with SQLITE_CORRUPT_INDEX (779, an extended code)."""
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA writable_schema = ON")
        connection.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX events_by_instance ON events "
            "(data, event_id)' WHERE name = 'events_by_instance'"
        )
    finally:
        connection.close()


def test_an_extended_corruption_code_is_refused_as_damage(db_path):
    store = SQLiteStateStore(db_path)
    event_ids = [store.append_event("order-7", f"event {n}".encode()) for n in range(3)]
    store.close()
    break_the_events_index(db_path)
    store = SQLiteStateStore(db_path)
    try:
        with pytest.raises(CorruptStateError) as caught:
            store.delete_events("order-7", event_ids[1:2])
        assert "instance 'order-7'" in str(caught.value) and "damaged" in str(caught.value)
        assert caught.value.__cause__.sqlite_errorcode == 779  # SQLITE_CORRUPT_INDEX
    finally:
        store.close()


@pytest.mark.parametrize(
    "code", [sqlite3.SQLITE_CORRUPT, 267, 779, 1035, sqlite3.SQLITE_NOTADB]
)  # fmt: skip
def test_corrupt_and_notadb_count_as_damage_with_any_extended_code(code):
    error = sqlite3.DatabaseError("database disk image is malformed")
    error.sqlite_errorcode = code
    assert sqlite_module._is_damage(error)


@pytest.mark.parametrize("code", [sqlite3.SQLITE_BUSY, 261, sqlite3.SQLITE_FULL, 266, 1032])
def test_busy_full_and_io_errors_do_not_count_as_damage(code):
    error = sqlite3.OperationalError("not the file's fault")
    error.sqlite_errorcode = code
    assert not sqlite_module._is_damage(error)


# -- the SQLite store: older files are migrated to checksums ------------------------------------
def make_schema_2_store(path: Path) -> None:
    """A store file as durable's schema 2 wrote it: schema 1 migrated by its one migration."""
    make_schema_1_store(path)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        for statement in sqlite_module._MIGRATIONS[1]:
            connection.execute(statement)
        connection.execute("PRAGMA user_version = 2")
        connection.execute("COMMIT")
    finally:
        connection.close()


@pytest.mark.parametrize("make", [make_schema_1_store, make_schema_2_store], ids=["1", "2"])
def test_an_older_store_is_migrated_giving_every_row_its_checksum(db_path, make):
    make(db_path)
    store = SQLiteStateStore(db_path)
    try:
        assert raw(db_path, "PRAGMA user_version") == [(sqlite_module.SCHEMA_VERSION,)]
        rows = raw(db_path, "SELECT data, checksum FROM records UNION ALL "
                   "SELECT data, checksum FROM events")  # fmt: skip
        assert len(rows) == 4
        assert all(checksum == zlib.crc32(data) for data, checksum in rows)
        assert raw(db_path, "SELECT head FROM instances") == [(None,), (None,)]
        assert store.read_records("order-7") == [b"one", b"two"]
        assert store.read_head("order-7") is None
    finally:
        store.close()


def test_a_record_of_a_migrated_store_flipped_later_is_refused(db_path):
    make_schema_2_store(db_path)
    SQLiteStateStore(db_path).close()
    execute(db_path, "UPDATE records SET data = x'6f6e66' WHERE position = 0")  # "one" -> "onf"
    store = SQLiteStateStore(db_path)
    try:
        assert "position 0" in refused(lambda: store.read_records("order-7"))
    finally:
        store.close()


def test_a_migration_to_checksums_that_fails_leaves_the_schema_2_file_as_it_was(
    db_path, monkeypatch
):
    make_schema_2_store(db_path)
    monkeypatch.setitem(
        sqlite_module._MIGRATIONS, 2, (*sqlite_module._MIGRATIONS[2], "THIS IS NOT SQL")
    )
    with pytest.raises(sqlite3.OperationalError):
        SQLiteStateStore(db_path)
    assert raw(db_path, "PRAGMA user_version") == [(2,)]
    assert [row[1] for row in raw(db_path, "PRAGMA table_info(records)")] == [
        "instance_id", "position", "data"
    ]  # fmt: skip
