"""`DiskStateStore`: records survive the process, damage is refused, writes are atomic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from durable import CorruptStateError, DiskStateStore
from durable.stores import disk
from durable.stores.faults import FaultPlan

RECORD = b"the saved call stack of order-7 " * 8


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(store_dir) -> DiskStateStore:
    return DiskStateStore(store_dir)


def state_file(store_dir: Path, instance_id: str) -> Path:
    path = store_dir / "state" / f"{instance_id}.log"
    assert path.is_file()
    return path


def event_file(store_dir: Path, instance_id: str) -> Path:
    (path,) = (store_dir / "events" / instance_id).glob("*.event")
    return path


def every_file(directory: Path) -> set[Path]:
    return {path for path in directory.rglob("*") if path.is_file()}


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-5])


def flip_last_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1 - len(disk._ENDING)] ^= 0x01
    path.write_bytes(bytes(data))


def overwrite_magic(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(b"GARBAGE!" + data[8:])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def refused(call, instance_id: str) -> CorruptStateError:
    with pytest.raises(CorruptStateError) as caught:
        call()
    assert f"instance {instance_id!r}" in str(caught.value)
    return caught.value


# -- surviving the process ----------------------------------------------------------------------
def test_state_survives_a_new_store_over_the_same_directory(store, store_dir):
    store.append_record("order-7", RECORD)
    assert DiskStateStore(store_dir).read_records("order-7") == [RECORD]


def test_events_survive_a_new_store_over_the_same_directory(store, store_dir):
    event_id = store.append_event("order-7", b"payment received")
    assert DiskStateStore(store_dir).read_events("order-7") == [(event_id, b"payment received")]


def test_instances_are_listed_by_a_new_store_over_the_same_directory(store, store_dir):
    store.append_record("order-7", RECORD)
    store.append_record("order-8", RECORD)
    assert DiskStateStore(store_dir).list_instances() == ["order-7", "order-8"]


def test_events_appended_through_two_store_objects_read_back_in_append_order(store, store_dir):
    other = DiskStateStore(store_dir)
    for n in range(10):
        (store if n % 2 else other).append_event("order-7", f"event {n}".encode())
    assert [data for _, data in store.read_events("order-7")] == [
        f"event {n}".encode() for n in range(10)
    ]


def test_store_creates_its_directory(store_dir):
    DiskStateStore(store_dir / "nested" / "deeper")
    assert (store_dir / "nested" / "deeper").is_dir()


# -- damaged records ----------------------------------------------------------------------------
def test_log_whose_first_record_is_truncated_is_refused_naming_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    truncate(state_file(store_dir, "order-7"))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "truncated" in str(error)


def test_state_file_with_a_flipped_payload_byte_is_refused_naming_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    flip_last_payload_byte(state_file(store_dir, "order-7"))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "checksum" in str(error)


def test_state_file_with_garbage_magic_is_refused_naming_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    overwrite_magic(state_file(store_dir, "order-7"))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "not a durable record" in str(error)


def test_empty_state_file_is_refused_naming_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    empty(state_file(store_dir, "order-7"))
    refused(lambda: store.read_records("order-7"), "order-7")


def test_state_file_cut_inside_its_header_is_refused_naming_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    path.write_bytes(path.read_bytes()[:20])
    refused(lambda: store.read_records("order-7"), "order-7")


def test_state_file_of_another_record_format_is_refused_naming_the_format(store, store_dir):
    store.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    data = bytearray(path.read_bytes())
    data[8:10] = (99).to_bytes(2, "big")
    path.write_bytes(bytes(data))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "format 99" in str(error)


def sha256_framed(payload: bytes) -> bytes:
    """A record as format 1 framed it (SHA-256 checksum), before CRC-32 replaced it."""
    import hashlib
    import struct

    header = struct.pack(
        ">8sHQ32s", b"DURABLE\x00", 1, len(payload), hashlib.sha256(payload).digest()
    )
    return header + payload


def crc32_framed(payload: bytes) -> bytes:
    """A record as format 2 framed it (CRC-32, nothing after the payload)."""
    import struct
    import zlib

    return struct.pack(">8sHQI", b"DURABLE\x00", 2, len(payload), zlib.crc32(payload)) + payload


@pytest.mark.parametrize("framed", [sha256_framed, crc32_framed], ids=["format 1", "format 2"])
def test_a_log_of_an_earlier_record_format_is_read_and_appended_to(store, store_dir, framed):
    path = store_dir / "state" / "order-7.log"
    path.write_bytes(framed(b"first") + framed(b"second"))
    assert store.read_records("order-7") == [b"first", b"second"]
    store.append_record("order-7", b"third")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", b"second", b"third"]


def test_a_damaged_format_1_record_is_refused(store, store_dir):
    path = store_dir / "state" / "order-7.log"
    data = bytearray(sha256_framed(b"first") + sha256_framed(RECORD))
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "record 2" in str(error) and "checksum" in str(error)


def test_records_are_framed_with_a_crc32_of_their_payload_and_a_nonzero_ending():
    import zlib

    framed = disk.frame(RECORD)
    magic, version, length, checksum = disk._HEADER.unpack_from(framed)
    assert (version, length, checksum) == (3, len(RECORD), zlib.crc32(RECORD))
    assert framed[disk._HEADER.size : disk._HEADER.size + length] == RECORD
    assert framed[disk._HEADER.size + length :] == b"\n"


def test_refused_state_file_is_left_on_disk_untouched(store, store_dir):
    store.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    truncate(path)
    damaged = path.read_bytes()
    refused(lambda: store.read_records("order-7"), "order-7")
    assert path.read_bytes() == damaged


def test_a_damaged_state_file_does_not_affect_other_instances(store, store_dir):
    store.append_record("order-7", RECORD)
    store.append_record("order-8", b"eight")
    truncate(state_file(store_dir, "order-7"))
    assert store.read_records("order-8") == [b"eight"]


def test_truncated_event_file_is_refused_naming_the_instance(store, store_dir):
    store.append_event("order-7", RECORD)
    truncate(event_file(store_dir, "order-7"))
    error = refused(lambda: store.read_events("order-7"), "order-7")
    assert "truncated" in str(error)


def test_event_file_with_a_flipped_payload_byte_is_refused_naming_the_instance(store, store_dir):
    store.append_event("order-7", RECORD)
    flip_last_payload_byte(event_file(store_dir, "order-7"))
    error = refused(lambda: store.read_events("order-7"), "order-7")
    assert "checksum" in str(error)


def test_event_file_with_garbage_magic_is_refused_naming_the_instance(store, store_dir):
    store.append_event("order-7", RECORD)
    overwrite_magic(event_file(store_dir, "order-7"))
    error = refused(lambda: store.read_events("order-7"), "order-7")
    assert "not a durable record" in str(error)


def test_empty_event_file_is_refused_naming_the_instance(store, store_dir):
    store.append_event("order-7", RECORD)
    empty(event_file(store_dir, "order-7"))
    refused(lambda: store.read_events("order-7"), "order-7")


def test_a_damaged_event_is_not_skipped_in_favour_of_the_intact_ones(store, store_dir):
    store.append_event("order-7", b"intact before")
    damaged = store.append_event("order-7", b"will be damaged")
    store.append_event("order-7", b"intact after")
    path = store_dir / "events" / "order-7" / f"{damaged:020d}.event"
    truncate(path)
    refused(lambda: store.read_events("order-7"), "order-7")


# -- the log: torn tails and damage after the first record ---------------------------------------
def test_a_record_cut_short_at_the_end_of_the_log_is_dropped(store, store_dir):
    store.append_record("order-7", b"first")
    store.append_record("order-7", b"second, acknowledged")
    store.append_record("order-7", RECORD)
    truncate(state_file(store_dir, "order-7"))
    assert DiskStateStore(store_dir).read_records("order-7") == [
        b"first",
        b"second, acknowledged",
    ]


def test_a_record_cut_inside_its_header_at_the_end_of_the_log_is_dropped(store, store_dir):
    store.append_record("order-7", b"first")
    store.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    first_length = len(disk.frame(b"first"))
    path.write_bytes(path.read_bytes()[: first_length + 10])
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first"]


def test_an_append_after_a_torn_tail_replaces_the_torn_bytes(store, store_dir):
    store.append_record("order-7", b"first")
    store.append_record("order-7", RECORD)
    truncate(state_file(store_dir, "order-7"))
    again = DiskStateStore(store_dir)
    again.append_record("order-7", b"next")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", b"next"]


def test_a_complete_last_record_with_a_bad_checksum_is_refused_not_dropped(store, store_dir):
    store.append_record("order-7", b"first")
    store.append_record("order-7", RECORD)
    flip_last_payload_byte(state_file(store_dir, "order-7"))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "record 2" in str(error)


def test_damage_before_the_last_record_is_refused(store, store_dir):
    store.append_record("order-7", b"first")
    store.append_record("order-7", RECORD)
    store.append_record("order-7", b"third")
    path = state_file(store_dir, "order-7")
    data = bytearray(path.read_bytes())
    data[len(disk.frame(b"first")) + disk._HEADER.size + 3] ^= 0x01
    path.write_bytes(bytes(data))
    error = refused(lambda: store.read_records("order-7"), "order-7")
    assert "record 2" in str(error) and "checksum" in str(error)


def test_a_new_store_object_appends_after_the_records_of_another(store, store_dir):
    store.append_record("order-7", b"one")
    DiskStateStore(store_dir).append_record("order-7", b"two")
    store.append_record("order-7", b"three")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"one", b"two", b"three"]


def test_an_append_after_another_store_object_compacted_the_log_lands_in_the_new_log(
    store, store_dir
):
    store.append_record("order-7", b"one")
    store.append_record("order-7", b"two")
    DiskStateStore(store_dir).replace_records("order-7", [b"compacted"])
    store.append_record("order-7", b"three")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"compacted", b"three"]


def test_a_store_keeps_a_bounded_number_of_logs_open(store, store_dir):
    for n in range(disk._OPEN_LOGS + 20):
        store.append_record(f"order-{n}", b"first")
        store.append_record(f"order-{n}", b"second")
    assert len(store._descriptors) <= disk._OPEN_LOGS
    store.close()
    assert store._descriptors == {}
    store.append_record("order-3", b"third")
    assert store.read_records("order-3") == [b"first", b"second", b"third"]


def test_an_append_is_one_data_sync_of_the_log_file(store, store_dir, monkeypatch):
    store.append_record("order-7", b"first")
    synced: list[tuple[str, int]] = []
    real_fsync, real_sync_data = disk.os.fsync, disk._sync_data
    monkeypatch.setattr(disk.os, "fsync", lambda fd: (synced.append(("fsync", fd)), real_fsync(fd)))
    monkeypatch.setattr(
        disk, "_sync_data", lambda fd: (synced.append(("data", fd)), real_sync_data(fd))
    )
    store.append_record("order-7", RECORD)
    ((kind, descriptor),) = synced
    assert kind == "data"
    assert os.path.samestat(os.fstat(descriptor), os.stat(state_file(store_dir, "order-7")))


def test_an_append_under_the_store_objects_lease_does_not_look_the_log_up_again(
    store, store_dir, monkeypatch
):
    assert store.acquire_lease("order-7", "test") is None
    store.append_record("order-7", b"first")
    store.append_record("order-7", b"second")
    looked_up: list[str] = []
    real_stat = disk.os.stat
    monkeypatch.setattr(
        disk.os,
        "stat",
        lambda path, **options: (looked_up.append(path), real_stat(path, **options))[1],
    )
    store.append_record("order-7", RECORD)
    assert looked_up == []
    store.release_lease("order-7", "test")
    store.append_record("order-7", b"fourth")
    assert len(looked_up) == 1
    assert DiskStateStore(store_dir).read_records("order-7") == [
        b"first",
        b"second",
        RECORD,
        b"fourth",
    ]


# -- space reserved under the lease ---------------------------------------------------------------
needs_allocate = pytest.mark.skipif(
    disk._allocate is None, reason="this system has no posix_fallocate to reserve space with"
)


@pytest.fixture
def leased(store) -> DiskStateStore:
    """`store`, holding the lease of order-7 as a run of it does."""
    assert store.acquire_lease("order-7", "test") is None
    return store


def records_length(*records: bytes) -> int:
    return sum(len(disk.frame(record)) for record in records)


@needs_allocate
def test_a_leased_log_reserves_space_past_its_records_and_gives_it_back_with_the_lease(
    leased, store_dir
):
    leased.append_record("order-7", b"first")
    leased.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    assert path.stat().st_size == records_length(b"first") + disk._RESERVE
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", RECORD]
    leased.release_lease("order-7", "test")
    assert path.stat().st_size == records_length(b"first", RECORD)
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", RECORD]


@needs_allocate
def test_an_append_into_reserved_space_is_one_data_sync_and_leaves_the_file_size_alone(
    leased, store_dir, monkeypatch
):
    leased.append_record("order-7", b"first")
    leased.append_record("order-7", b"second")
    path = state_file(store_dir, "order-7")
    size = path.stat().st_size
    synced: list[int] = []
    real_sync_data = disk._sync_data
    monkeypatch.setattr(disk, "_sync_data", lambda fd: (synced.append(fd), real_sync_data(fd)))
    monkeypatch.setattr(disk.os, "fsync", lambda fd: pytest.fail("an append made a full fsync"))
    leased.append_record("order-7", RECORD)
    assert len(synced) == 1
    assert path.stat().st_size == size
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", b"second", RECORD]


@needs_allocate
def test_a_leased_log_reserves_more_space_once_its_reserve_is_used_up(leased, store_dir):
    big = b"x" * (disk._RESERVE // 3)
    for _ in range(7):
        leased.append_record("order-7", big)
    path = state_file(store_dir, "order-7")
    assert path.stat().st_size >= records_length(*[big] * 7) + disk._RESERVE
    assert DiskStateStore(store_dir).read_records("order-7") == [big] * 7
    leased.release_lease("order-7", "test")
    assert path.stat().st_size == records_length(*[big] * 7)


@needs_allocate
def test_a_compaction_under_the_lease_reserves_space_the_next_append_uses(leased, store_dir):
    leased.append_record("order-7", b"first")
    leased.replace_records("order-7", [b"compacted"])
    path = state_file(store_dir, "order-7")
    size = path.stat().st_size
    assert size == records_length(b"compacted") + disk._RESERVE
    leased.append_record("order-7", b"after")
    assert path.stat().st_size == size
    assert DiskStateStore(store_dir).read_records("order-7") == [b"compacted", b"after"]


def test_a_log_written_without_the_lease_reserves_nothing(store, store_dir):
    store.append_record("order-7", b"first")
    store.replace_records("order-7", [b"compacted"])
    store.append_record("order-7", b"after")
    path = state_file(store_dir, "order-7")
    assert path.stat().st_size == records_length(b"compacted", b"after")


def cut_short_in_reserved_space(store_dir: Path, kept: list[bytes], torn: bytes, upto: int):
    """Write the first `upto` bytes of `torn`'s frame after the records `kept`, as an append
    cut short leaves them in reserved space (zeros after)."""
    path = state_file(store_dir, "order-7")
    data = bytearray(path.read_bytes())
    end = records_length(*kept)
    assert data[end:] == bytes(len(data) - end)
    data[end : end + upto] = disk.frame(torn)[:upto]
    path.write_bytes(bytes(data))


@needs_allocate
@pytest.mark.parametrize("upto", [4, 10, disk._HEADER.size, disk._HEADER.size + 50, -1])
def test_a_record_cut_short_inside_reserved_space_is_dropped(leased, store_dir, upto):
    leased.append_record("order-7", b"first")
    leased.append_record("order-7", b"second, acknowledged")
    kept = [b"first", b"second, acknowledged"]
    cut_short_in_reserved_space(store_dir, kept, RECORD, upto)
    assert DiskStateStore(store_dir).read_records("order-7") == kept


@needs_allocate
def test_an_append_after_a_record_cut_short_in_reserved_space_clears_its_bytes(store_dir):
    crashed = DiskStateStore(store_dir)
    assert crashed.acquire_lease("order-7", "crashed run") is None
    crashed.append_record("order-7", b"first")
    cut_short_in_reserved_space(store_dir, [b"first"], RECORD, len(disk.frame(RECORD)) - 1)
    crashed._leases.release("order-7")  # its process ended: the lease ends, nothing else
    again = DiskStateStore(store_dir)
    assert again.acquire_lease("order-7", "next run") is None
    assert again.read_records("order-7") == [b"first"]
    again.append_record("order-7", b"next")
    again.append_record("order-7", b"and next")
    again.release_lease("order-7", "next run")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"first", b"next", b"and next"]
    assert state_file(store_dir, "order-7").stat().st_size == records_length(
        b"first", b"next", b"and next"
    )


@needs_allocate
def test_a_complete_last_record_with_a_bad_checksum_in_reserved_space_is_refused(leased, store_dir):
    leased.append_record("order-7", b"first")
    leased.append_record("order-7", RECORD)
    path = state_file(store_dir, "order-7")
    data = bytearray(path.read_bytes())
    data[records_length(b"first", RECORD) - 2] ^= 0x01  # its last payload byte
    path.write_bytes(bytes(data))
    error = refused(lambda: DiskStateStore(store_dir).read_records("order-7"), "order-7")
    assert "record 2" in str(error) and "checksum" in str(error)


@needs_allocate
@pytest.mark.parametrize("upto", [4, 10])
def test_bytes_written_past_a_damaged_record_in_reserved_space_are_refused(leased, store_dir, upto):
    leased.append_record("order-7", b"first")
    path = state_file(store_dir, "order-7")
    data = bytearray(path.read_bytes())
    end = records_length(b"first")
    data[end : end + upto] = disk.frame(RECORD)[:upto]  # a header cut short...
    data[end + 100] = 1  # ...and something written past it
    path.write_bytes(bytes(data))
    error = refused(lambda: DiskStateStore(store_dir).read_records("order-7"), "order-7")
    assert "record 2" in str(error)


def test_a_lease_taken_after_another_store_object_appended_appends_after_its_records(
    store, store_dir
):
    store.append_record("order-7", b"one")
    assert store.read_records("order-7") == [b"one"]
    DiskStateStore(store_dir).append_record("order-7", b"two")
    assert store.acquire_lease("order-7", "test") is None
    store.append_record("order-7", b"three")
    store.release_lease("order-7", "test")
    assert DiskStateStore(store_dir).read_records("order-7") == [b"one", b"two", b"three"]


def test_a_lease_is_released_even_when_its_log_was_deleted_behind_the_store(leased, store_dir):
    leased.append_record("order-7", b"first")
    state_file(store_dir, "order-7").unlink()
    leased.release_lease("order-7", "test")
    assert DiskStateStore(store_dir).acquire_lease("order-7", "next run") is None


def test_closing_a_store_gives_back_the_space_reserved_under_its_leases(leased, store_dir):
    leased.append_record("order-7", b"first")
    leased.append_record("order-7", b"second")
    leased.close()
    assert state_file(store_dir, "order-7").stat().st_size == records_length(b"first", b"second")


# -- fault points ---------------------------------------------------------------------------------
FAULT_SCRIPT = """
import sys
from durable import DiskStateStore
store = DiskStateStore(sys.argv[1])
if sys.argv[2:] == ["leased"]:
    assert store.acquire_lease("order-7", "fault test") is None
for n in range(1, 5):
    store.append_record("order-7", f"record {n}".encode())
print("no fault")
"""


def run_with_fault(store_dir: Path, fault: str, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", FAULT_SCRIPT, str(store_dir), *options],
        env={**os.environ, "DURABLE_FAULT": fault},
        capture_output=True,
        text=True,
        timeout=60,
    )


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
@pytest.mark.slow
@pytest.mark.parametrize("lease", [[], ["leased"]], ids=["unleased", "leased"])
def test_a_fault_point_kills_the_process_at_that_write(store_dir, fault, kept, lease):
    finished = run_with_fault(store_dir, fault, *lease)
    assert finished.returncode == -signal.SIGKILL
    assert finished.stdout == ""
    records = DiskStateStore(store_dir).read_records("order-7")
    assert records == [f"record {n}".encode() for n in range(1, kept + 1)]
    if kept:  # the next run appends after them, into what the killed one reserved
        again = DiskStateStore(store_dir)
        assert again.acquire_lease("order-7", "next run") is None
        assert again.read_records("order-7") == records
        again.append_record("order-7", b"next")
        again.release_lease("order-7", "next run")
        assert DiskStateStore(store_dir).read_records("order-7") == [*records, b"next"]


def test_a_fault_point_past_the_last_write_changes_nothing(store_dir):
    finished = run_with_fault(store_dir, "after:5")
    assert finished.returncode == 0
    assert len(DiskStateStore(store_dir).read_records("order-7")) == 4


@pytest.mark.parametrize("spec", ["later:1", "after:0", "after:x", "after"])
def test_a_malformed_fault_point_is_refused_with_the_expected_form(spec):
    with pytest.raises(ValueError, match="before:K, after:K or torn:K"):
        FaultPlan(spec)


# -- atomic writes --------------------------------------------------------------------------------
def test_writes_leave_no_temporary_files_behind(store, store_dir):
    for n in range(5):
        store.replace_records("order-7", [RECORD] * n)
        store.append_event("order-7", RECORD)
    store.delete_events("order-7", [event_id for event_id, _ in store.read_events("order-7")][:2])
    store.append_record("order-8", RECORD)
    store.delete_instance("order-8")
    assert list(store_dir.rglob(".tmp-*")) == []


def test_compaction_interrupted_before_the_rename_keeps_the_old_log(store, store_dir, monkeypatch):
    store.append_record("order-7", b"old record")

    def crash(source, destination):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(disk.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.replace_records("order-7", [b"new record that never lands"])
    monkeypatch.undo()
    assert store.read_records("order-7") == [b"old record"]
    assert DiskStateStore(store_dir).read_records("order-7") == [b"old record"]


def test_first_write_interrupted_before_the_rename_of_a_new_instance_leaves_no_record(
    store, store_dir, monkeypatch
):
    def crash(source, destination):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(disk.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        store.append_record("order-7", b"never lands")
    monkeypatch.undo()
    assert store.read_records("order-7") == []
    assert store.list_instances() == []


def test_failed_write_leaves_no_temporary_file_behind(store, store_dir, monkeypatch):
    store.append_record("order-7", b"old record")

    def fail(source, destination):
        raise OSError("rename refused")

    monkeypatch.setattr(disk.os, "replace", fail)
    with pytest.raises(OSError, match="rename refused"):
        store.replace_records("order-7", [b"new record"])
    monkeypatch.undo()
    assert list(store_dir.rglob(".tmp-*")) == []


def test_state_files_are_private_to_their_owner(store, store_dir):
    store.append_record("order-7", RECORD)
    store.append_event("order-7", RECORD)
    for path in every_file(store_dir):
        assert path.stat().st_mode & 0o077 == 0, path


# -- staying inside the store directory -----------------------------------------------------------
def test_store_files_live_only_inside_the_store_directory(tmp_path, store, store_dir):
    for instance_id in ["order-7", "a:b", "user_1.step", "x" * 200]:
        store.append_record(instance_id, RECORD)
        store.append_event(instance_id, RECORD)
    store.delete_instance("a:b")
    assert list(tmp_path.iterdir()) == [store_dir]
    assert every_file(tmp_path) == every_file(store_dir)


def test_delete_instance_removes_every_file_of_the_instance(store, store_dir):
    store.append_record("order-7", RECORD)
    store.append_event("order-7", RECORD)
    store.delete_instance("order-7")
    assert every_file(store_dir) == set()


def test_unrelated_files_in_the_state_directory_are_not_listed_as_instances(store, store_dir):
    store.append_record("order-7", RECORD)
    (store_dir / "state" / "notes.txt").write_text("not a record")
    (store_dir / "state" / ".tmp-left-by-a-crash").write_bytes(b"partial")
    assert store.list_instances() == ["order-7"]


def test_repr_names_the_directory(store_dir):
    assert str(store_dir) in repr(DiskStateStore(store_dir))
