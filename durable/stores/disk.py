"""`DiskStateStore`: one directory; per instance an append-only log of checksummed records.

A write appends one framed record and fsyncs once. A new log, a compaction and each event
are written whole to a temporary file, fsynced and renamed (or hard-linked) into place, then
the directory is fsynced. A record cut short at the end of a log was never acknowledged and
is dropped; any other damage is refused with the instance id, never half-loaded.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import uuid
import zlib
from collections.abc import Sequence
from pathlib import Path

from .._errors import CorruptStateError
from .._ids import validate_instance_id
from .base import InstanceSummary, StateStore
from .faults import FaultPlan, die
from .locks import FileLeases

_MAGIC = b"DURABLE\x00"
#: Record formats by number: their header (magic, format, payload length, checksum of the
#: payload) and checksum. Format 2 (CRC-32) is written; format 1 (SHA-256, whose cost
#: weighed on every step) is still read.
_HEADERS = {1: struct.Struct(">8sHQ32s"), 2: struct.Struct(">8sHQI")}
_CHECKSUMS = {1: lambda payload: hashlib.sha256(payload).digest(), 2: zlib.crc32}
_FORMAT = 2
_HEADER = _HEADERS[_FORMAT]
_PREFIX = struct.Struct(">8sH")  # magic, format: what tells which header follows
#: Logs a store keeps open for appending (the least recently opened is closed first).
_OPEN_LOGS = 64
#: How an append is made durable: its data and the file size (not the timestamps).
_sync_data = getattr(os, "fdatasync", os.fsync)


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, _FORMAT, len(payload), zlib.crc32(payload)) + payload


def _header_at(data: bytes, offset: int) -> struct.Struct:
    """The header the record at `offset` starts with, by its format number (the current
    one when too little is there to tell)."""
    if len(data) - offset >= _PREFIX.size:
        return _HEADERS.get(_PREFIX.unpack_from(data, offset)[1], _HEADER)
    return _HEADER


def unframe(data: bytes, what: str) -> bytes:
    """The payload of a framed record, or `CorruptStateError` saying what is wrong."""
    header = _header_at(data, 0)
    if len(data) < header.size:
        raise CorruptStateError(f"{what} is truncated ({len(data)} bytes, header is {header.size})")
    magic, version, length, checksum = header.unpack_from(data)
    if magic != _MAGIC:
        raise CorruptStateError(f"{what} is not a durable record (bad magic number)")
    if version not in _HEADERS:
        readable = " and ".join(str(number) for number in _HEADERS)
        raise CorruptStateError(
            f"{what} has record format {version}; this version reads formats {readable}"
        )
    payload = data[header.size :]
    if len(payload) != length:
        raise CorruptStateError(f"{what} is truncated ({len(payload)} of {length} payload bytes)")
    if _CHECKSUMS[version](payload) != checksum:
        raise CorruptStateError(f"{what} failed its checksum")
    return payload


def parse_log(data: bytes, what: str) -> tuple[list[bytes], int]:
    """The payloads of a log and the length they fill. A last record cut short (never
    acknowledged: its append did not finish) is left out; the first record, written whole
    by rename, and every complete record must be intact."""
    if not data:
        raise CorruptStateError(f"{what} is empty")
    records: list[bytes] = []
    view = memoryview(data)
    size = len(data)
    offset = 0
    while offset < size:
        header = _header_at(data, offset)
        header_size = header.size
        if size - offset >= header_size:
            magic, version, length, checksum = header.unpack_from(data, offset)
            end = offset + header_size + length
            if end <= size and magic == _MAGIC and version in _HEADERS:
                payload = view[offset + header_size : end]
                if _CHECKSUMS[version](payload) == checksum:
                    records.append(payload.tobytes())
                    offset = end
                    continue
            if end > size and records:
                break  # a torn tail: its append never finished
        elif records:
            break
        else:
            end = size
        # Damaged, or the first record cut short: `unframe` says how.
        where = f"{what} (record {len(records) + 1})"
        unframe(data[offset : min(end, size)], where)
        raise CorruptStateError(f"{where} is damaged")
    return records, offset


def _write_all(descriptor: int, data: bytes, offset: int) -> None:
    written = os.pwrite(descriptor, data, offset)
    if written == len(data):
        return  # the common case: one call
    view = memoryview(data)[written:]
    offset += written
    while view:
        written = os.pwrite(descriptor, view, offset)
        view = view[written:]
        offset += written


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_temporary(directory: Path, data: bytes) -> Path:
    temporary = directory / f".tmp-{uuid.uuid4().hex}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(descriptor, data, 0)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


class DiskStateStore(StateStore):
    """Logs under ``<path>/state/``, events under ``<path>/events/<instance id>/``, lease
    locks under ``<path>/leases/``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._states = self.path / "state"
        self._inboxes = self.path / "events"
        self._states.mkdir(parents=True, exist_ok=True)
        self._inboxes.mkdir(parents=True, exist_ok=True)
        #: instance id -> length of its log's valid records, as last read or written here.
        self._ends: dict[str, int] = {}
        #: instance id -> (descriptor, inode) of its log, open for appending; oldest first.
        self._descriptors: dict[str, tuple[int, int]] = {}
        self._paths: dict[str, str] = {}
        self._faults = FaultPlan.from_environment()
        self._leases = FileLeases(self.path / "leases")

    def __repr__(self) -> str:
        return f"DiskStateStore({str(self.path)!r})"

    def _log_file(self, instance_id: str) -> Path:
        return Path(self._log_path(instance_id))

    def _log_path(self, instance_id: str) -> str:
        path = self._paths.get(instance_id) if type(instance_id) is str else None
        if path is None:
            if len(self._paths) > 4096:
                self._paths.clear()
            path = os.path.join(self._states, f"{validate_instance_id(instance_id)}.log")
            self._paths[instance_id] = path
        return path

    def _inbox(self, instance_id: str) -> Path:
        return self._inboxes / validate_instance_id(instance_id)

    def read_records(self, instance_id: str) -> list[bytes]:
        path = self._log_file(instance_id)
        self._forget_descriptor(instance_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._ends.pop(instance_id, None)
            return []
        records, end = self._parse(instance_id, path, data)
        self._ends[instance_id] = end
        return records

    def _parse(self, instance_id: str, path: Path, data: bytes) -> tuple[list[bytes], int]:
        try:
            return parse_log(data, f"the log file {path}")
        except CorruptStateError as error:
            raise CorruptStateError(
                f"instance {instance_id!r}: {error}; it was not loaded. Restore the file from a "
                "backup, or delete it to forget the instance"
            ) from None

    def append_record(
        self, instance_id: str, record: bytes, summary: InstanceSummary | None = None
    ) -> None:
        path = self._log_path(instance_id)
        fault = self._faults.next_write()
        if fault == "before":
            die()
        data = frame(record)
        cached = self._descriptors.get(instance_id)
        end = self._ends.get(instance_id)
        if cached is None or end is None or not self._leases.holds(instance_id):
            # Without this store object's lease, someone else may have written the log.
            try:
                status = os.stat(path)
            except FileNotFoundError:
                self._write_whole(instance_id, Path(path), data, fault)
                return
            descriptor, end = self._open_for_append(instance_id, path, status, cached, end)
        else:
            # Under its lease no one else writes the log: append where the last write ended.
            descriptor = cached[0]
        if fault == "torn":
            os.pwrite(descriptor, data[: len(data) // 2], end)
            os.fsync(descriptor)
            die()
        try:
            _write_all(descriptor, data, end)
            _sync_data(descriptor)
        except BaseException:
            self._ends.pop(instance_id, None)
            self._forget_descriptor(instance_id)
            raise
        self._ends[instance_id] = end + len(data)
        if fault == "after":
            die()

    def _open_for_append(
        self,
        instance_id: str,
        path: str,
        status: os.stat_result,
        cached: tuple[int, int] | None,
        end: int | None,
    ) -> tuple[int, int]:
        """The descriptor to append to the log with, and where its valid records end."""
        if cached is not None and cached[1] == status.st_ino and end == status.st_size:
            return cached[0], end
        # First append here, the file was replaced, or it was appended to by another store
        # object (or holds a torn tail to cut off): open it afresh.
        self._forget_descriptor(instance_id)
        descriptor = os.open(path, os.O_WRONLY)
        self._remember_descriptor(instance_id, descriptor, os.fstat(descriptor).st_ino)
        if end != status.st_size:
            with open(path, "rb") as log:
                _, end = self._parse(instance_id, Path(path), log.read())
            if end != status.st_size:
                os.ftruncate(descriptor, end)
        return descriptor, end

    def _remember_descriptor(self, instance_id: str, descriptor: int, inode: int) -> None:
        descriptors = self._descriptors
        descriptors[instance_id] = (descriptor, inode)
        if len(descriptors) > _OPEN_LOGS:
            oldest = next(iter(descriptors))
            self._forget_descriptor(oldest)

    def _forget_descriptor(self, instance_id: str) -> None:
        cached = self._descriptors.pop(instance_id, None)
        if cached is not None:
            os.close(cached[0])

    def close(self) -> None:
        """Close the log files kept open for appending and end the leases this store object
        holds (the store stays usable)."""
        for instance_id in list(self._descriptors):
            self._forget_descriptor(instance_id)
        self._leases.close()

    def acquire_lease(self, instance_id: str, owner: str) -> str | None:
        """An exclusive lock on the instance's lease file, held until released or until this
        process ends (see `durable.stores.locks`)."""
        return self._leases.acquire(instance_id, owner)

    def release_lease(self, instance_id: str, owner: str) -> None:
        self._leases.release(instance_id)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
    ) -> None:
        path = self._log_file(instance_id)
        self._forget_descriptor(instance_id)
        fault = self._faults.next_write()
        if fault == "before":
            die()
        self._write_whole(instance_id, path, b"".join(frame(r) for r in records), fault)

    def _write_whole(self, instance_id: str, path: Path, data: bytes, fault: str | None) -> None:
        if fault == "torn":
            _write_temporary(self._states, data[: len(data) // 2])
            die()
        temporary = _write_temporary(self._states, data)
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(self._states)
        self._ends[instance_id] = len(data)
        if fault == "after":
            die()

    def delete_instance(self, instance_id: str) -> None:
        path = self._log_file(instance_id)
        self._forget_descriptor(instance_id)
        path.unlink(missing_ok=True)
        self._leases.forget(instance_id)
        self._ends.pop(instance_id, None)
        inbox = self._inbox(instance_id)
        if inbox.exists():
            for event in inbox.iterdir():
                event.unlink(missing_ok=True)
            inbox.rmdir()
        _fsync_directory(self._states)

    def list_instances(self) -> list[str]:
        return sorted(p.name[: -len(".log")] for p in self._states.glob("*.log"))

    def append_event(self, instance_id: str, data: bytes) -> int:
        inbox = self._inbox(instance_id)
        inbox.mkdir(exist_ok=True)
        temporary = _write_temporary(inbox, frame(data))
        # Ids are nanosecond timestamps (FIFO across processes); a taken id moves on by one.
        event_id = time.time_ns()
        try:
            while True:
                try:
                    os.link(temporary, inbox / f"{event_id:020d}.event")
                    break
                except FileExistsError:
                    event_id += 1
        finally:
            temporary.unlink(missing_ok=True)
        _fsync_directory(inbox)
        return event_id

    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        inbox = self._inbox(instance_id)
        if not inbox.exists():
            return []
        events = []
        for path in sorted(inbox.glob("*.event")):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            try:
                payload = unframe(data, f"the event file {path}")
            except CorruptStateError as error:
                raise CorruptStateError(f"instance {instance_id!r}: {error}") from None
            events.append((int(path.name[: -len(".event")]), payload))
        return events

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        inbox = self._inbox(instance_id)
        for event_id in event_ids:
            (inbox / f"{event_id:020d}.event").unlink(missing_ok=True)
        if event_ids and inbox.exists():
            _fsync_directory(inbox)
