"""`DiskStateStore`: one directory; per instance an append-only log of checksummed records.

A write appends one framed record and fsyncs once. A new log, a compaction and each event
are written whole to a temporary file, fsynced and renamed (or hard-linked) into place, then
the directory is fsynced. While a store object holds an instance's lease, its log carries
space reserved past its records (zeros), so that an append changes no file size and its sync
writes no metadata; the lease's release gives the space back.

A record cut short at the real end of a log (followed by nothing, or only by the zeros of
reserved space) was never acknowledged and is dropped. Any other damage is refused with the
instance id and the record's number, never half-loaded: in particular a record whose length
field says it runs past the end, when an intact record starts anywhere after it (records after
it were acknowledged, so its append did finish). One torn tail is refused rather than dropped:
an append cut short whose own payload already holds a whole framed record (a step result that
is itself such a record); restoring or deleting the log is then the operator's call.

Heads (`StateStore.keeps_heads`): an instance's head is framed in a file of its own beside
the log, ``<instance id>.log.head``, written whole (temporary file, fsync, rename, directory
fsync) after the log is durable, and only when the log is written whole (a new log, a
compaction) and when the lease is released or the store closed (then the head given with the
last append, whose record was synced before). So an append stays one data sync, and the head
on disk may lag the log by the appends since its last whole write or release: rollback
detection here covers a log cut back to before that point, not a cut of those last appends.

It needs POSIX (file locks, positioned writes): elsewhere (Windows) it is refused when made,
pointing to `SQLiteStateStore`.
"""

from __future__ import annotations

import contextlib
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
from .locks import FileLeases, require_file_locks

_MAGIC = b"DURABLE\x00"
#: Record formats by number: their header (magic, format, payload length, checksum of the
#: payload), checksum and ending (what follows the payload). Format 3 is written: CRC-32 and
#: an ending byte that is never zero, so that an append cut short inside reserved space
#: (zeros) shows as a record whose last byte is missing. Formats 1 (SHA-256, whose cost
#: weighed on every step) and 2 (CRC-32, no ending) are still read.
_HEADERS = {1: struct.Struct(">8sHQ32s"), 2: struct.Struct(">8sHQI"), 3: struct.Struct(">8sHQI")}
_CHECKSUMS = {1: lambda payload: hashlib.sha256(payload).digest(), 2: zlib.crc32, 3: zlib.crc32}
_ENDINGS = {1: b"", 2: b"", 3: b"\n"}
_FORMAT = 3
_HEADER = _HEADERS[_FORMAT]
_ENDING = _ENDINGS[_FORMAT]
_PREFIX = struct.Struct(">8sH")  # magic, format: what tells which header follows
#: Logs a store keeps open for appending (the least recently opened is closed first).
_OPEN_LOGS = 64
#: How an append is made durable: its data and the file size (not the timestamps).
_sync_data = getattr(os, "fdatasync", os.fsync)
#: Bytes a leased log reserves past its records at a time (about 450 steps of a small frame).
_RESERVE = 128 << 10
#: How space is reserved: allocated, reading as zeros. Without it (macOS), logs grow by
#: their appends and each sync writes the new size too.
_allocate = getattr(os, "posix_fallocate", None)


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, _FORMAT, len(payload), zlib.crc32(payload)) + payload + _ENDING


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
        readable = ", ".join(str(number) for number in _HEADERS)
        raise CorruptStateError(
            f"{what} has record format {version}; this version reads formats {readable}"
        )
    payload = data[header.size : header.size + length]
    if len(payload) != length:
        raise CorruptStateError(f"{what} is truncated ({len(payload)} of {length} payload bytes)")
    ending = _ENDINGS[version]
    if data[header.size + length :] != ending:
        raise CorruptStateError(f"{what} does not end where its header says it does")
    if _CHECKSUMS[version](payload) != checksum:
        raise CorruptStateError(f"{what} failed its checksum")
    return payload


def _intact_at(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """Where the payload of the intact record at `offset` starts and stops and where the
    record ends; None when no intact record (magic, known format, ending in place, payload
    matching its checksum) starts there."""
    end = _claimed_end(data, offset)
    if end is None or end > len(data):
        return None
    header = _header_at(data, offset)
    _, version, length, checksum = header.unpack_from(data, offset)
    start = offset + header.size
    stop = start + length
    if data[stop:end] != _ENDINGS[version]:
        return None
    if _CHECKSUMS[version](memoryview(data)[start:stop]) != checksum:
        return None
    return start, stop, end


def _claimed_end(data: bytes, offset: int) -> int | None:
    """Where the record at `offset` ends by its header (None when it has no readable one)."""
    header = _header_at(data, offset)
    if len(data) - offset < header.size:
        return None
    magic, version, length, _ = header.unpack_from(data, offset)
    if magic != _MAGIC or version not in _HEADERS:
        return None
    return offset + header.size + length + len(_ENDINGS[version])


def _next_intact(data: bytes, offset: int, stop: int) -> int | None:
    """Where the first intact record starting in ``data[offset:stop]`` starts, if any."""
    found = data.find(_MAGIC, offset, stop)
    while found != -1:
        if _intact_at(data, found) is not None:
            return found
        found = data.find(_MAGIC, found + 1, stop)
    return None


def parse_log(data: bytes, what: str) -> tuple[list[bytes], int]:
    """The payloads of a log and the length they fill. What an append that never finished
    leaves at the real end (so was never acknowledged) is left out; the first record, written
    whole by rename, every complete record, and every record with an intact one after it
    must be intact, else `CorruptStateError` names the record."""
    if not data:
        raise CorruptStateError(f"{what} is empty")
    records: list[bytes] = []
    size = len(data)
    offset = 0
    while offset < size:
        intact = _intact_at(data, offset)
        if intact is not None:
            start, stop, offset = intact
            records.append(data[start:stop])
            continue
        if records and _never_finished(data, offset):
            break
        where = f"{what} (record {len(records) + 1})"
        claimed = _claimed_end(data, offset)
        following = _next_intact(data, offset + 1, size)
        if claimed is not None and following is not None and claimed > following:
            raise CorruptStateError(
                f"{where} is damaged: its length field says it runs to byte {claimed} (the "
                f"log has {size}), over the intact record at byte {following}; records after "
                "it were written, so it is no append that never finished"
            )
        # Damaged, or the first record cut short: `unframe` says how.
        unframe(data[offset : size if claimed is None else min(claimed, size)], where)
        raise CorruptStateError(f"{where} is damaged")
    return records, offset


def _never_finished(data: bytes, offset: int) -> bool:
    """Whether the bytes from `offset` on are what an append that never finished leaves:
    only zeros (reserved space), or the first bytes of one record, its last byte missing
    (past the end of the file, or zero with only zeros after it), with no intact record
    after it (one would be an acknowledged append, so this one did finish: its length field
    is damaged)."""
    written = offset + len(data[offset:].rstrip(b"\0"))
    if written == offset:
        return True
    header = _header_at(data, offset)
    if len(data) - offset < header.size:
        return True  # cut inside its header
    claimed = _claimed_end(data, offset)
    if claimed is None:
        return written <= offset + header.size  # a header cut short, zeros after it
    if claimed <= written:
        return False  # all of it is there: a complete record, damaged
    return _next_intact(data, offset + 1, written) is None


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


def _reserve(descriptor: int, offset: int) -> bool:
    """Allocate `_RESERVE` bytes of the file past `offset` (reading as zeros); False where
    the system or file system cannot."""
    if _allocate is None:
        return False
    try:
        _allocate(descriptor, offset, _RESERVE)
    except OSError:
        return False
    return True


def _write_temporary(directory: Path, data: bytes, reserve: bool = False) -> tuple[Path, bool]:
    """A new temporary file in `directory` holding `data`, synced; and whether space was
    reserved past `data` (only when asked)."""
    temporary = directory / f".tmp-{uuid.uuid4().hex}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            _write_all(descriptor, data, 0)
            reserved = reserve and _reserve(descriptor, len(data))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary, reserved


class DiskStateStore(StateStore):
    """Logs (and their heads) under ``<path>/state/``, events under
    ``<path>/events/<instance id>/``, lease locks under ``<path>/leases/``."""

    keeps_heads = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        require_file_locks(
            "DiskStateStore",
            "use SQLiteStateStore('durable.db') here (or PostgresStateStore)",
        )
        self.path: Path = Path(path)
        self._states = self.path / "state"
        self._inboxes = self.path / "events"
        self._states.mkdir(parents=True, exist_ok=True)
        self._inboxes.mkdir(parents=True, exist_ok=True)
        #: instance id -> length of its log's valid records, as last read or written here.
        self._ends: dict[str, int] = {}
        #: instance id -> where the space reserved in its log ends, while its lease is held.
        self._reserved: dict[str, int] = {}
        #: instance id -> (descriptor, inode) of its log, open for appending; oldest first.
        self._descriptors: dict[str, tuple[int, int]] = {}
        self._paths: dict[str, str] = {}
        #: instance id -> the head given with its latest append, not yet in its head file
        #: (written at the next whole write of the log, release of the lease, or close).
        self._unsaved_heads: dict[str, bytes] = {}
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

    def _head_file(self, instance_id: str) -> Path:
        return Path(self._log_path(instance_id) + ".head")

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

    def read_head(self, instance_id: str) -> bytes | None:
        """The head given with the latest write through this store object, else the one in
        the head file (which may lag the log: see the module docstring)."""
        unsaved = self._unsaved_heads.get(instance_id)
        if unsaved is not None:
            return unsaved
        path = self._head_file(instance_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return unframe(data, f"the head file {path}")
        except CorruptStateError as error:
            raise CorruptStateError(
                f"instance {instance_id!r}: {error}; it was not loaded. Restore the file from a "
                "backup, or delete the instance"
            ) from None

    def append_record(
        self,
        instance_id: str,
        record: bytes,
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> None:
        path = self._log_path(instance_id)
        fault = self._faults.next_write()
        if fault == "before":
            die()
        data = frame(record)
        cached = self._descriptors.get(instance_id)
        end = self._ends.get(instance_id)
        leased = self._leases.holds(instance_id)
        if cached is not None and end is not None and leased:
            # Under its lease no one else writes the log: append where the last write ended.
            descriptor = cached[0]
        elif end is not None and leased:
            descriptor = self._reopen(instance_id, path, end)
        else:
            # Without this store object's lease, someone else may have written the log.
            try:
                status = os.stat(path)
            except FileNotFoundError:
                # A head left by a deleted instance of this id names records of another log.
                self._unsaved_heads.pop(instance_id, None)
                if head is None:
                    self._head_file(instance_id).unlink(missing_ok=True)
                self._write_whole(instance_id, Path(path), data, fault, head)
                return
            descriptor, end = self._open_for_append(instance_id, path, status, cached, end)
        if fault == "torn":
            os.pwrite(descriptor, data[: len(data) // 2], end)
            os.fsync(descriptor)
            die()
        written_to = end + len(data)
        try:
            _write_all(descriptor, data, end)
            if leased and written_to > self._reserved.get(instance_id, 0):
                # Synced with the record: one sync per append still.
                if _reserve(descriptor, written_to):
                    self._reserved[instance_id] = written_to + _RESERVE
            _sync_data(descriptor)
        except BaseException:
            self._ends.pop(instance_id, None)
            self._forget_descriptor(instance_id)
            raise
        self._ends[instance_id] = written_to
        if head is not None:
            # Its record is synced: the head may go to disk whenever the next whole write is.
            self._unsaved_heads[instance_id] = bytes(head)
        if fault == "after":
            die()

    def _reopen(self, instance_id: str, path: str, end: int) -> int:
        """Open the log again under the lease, after a read or a compaction here: where its
        records end is known, and what lies past that is cut off unless it is the space this
        object reserved (else it is what a run that never finished left)."""
        descriptor, size = self._open_log(instance_id, path)
        if size not in (end, self._reserved.get(instance_id)):
            self._cut(instance_id, descriptor, end)
        return descriptor

    def _open_log(self, instance_id: str, path: str) -> tuple[int, int]:
        """Open the log for appending and keep it open: its descriptor and size."""
        descriptor = os.open(path, os.O_WRONLY)
        status = os.fstat(descriptor)
        self._remember_descriptor(instance_id, descriptor, status.st_ino)
        return descriptor, status.st_size

    def _cut(self, instance_id: str, descriptor: int, end: int) -> None:
        """Cut the log back to its records (what followed was never acknowledged)."""
        os.ftruncate(descriptor, end)
        self._reserved.pop(instance_id, None)

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
        descriptor, _ = self._open_log(instance_id, path)
        if end != status.st_size:
            with open(path, "rb") as log:
                _, end = self._parse(instance_id, Path(path), log.read())
            if end != status.st_size:
                self._cut(instance_id, descriptor, end)
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
        """Write the heads given with appends since their last whole write, close the log
        files kept open for appending and end the leases this store object holds, giving
        back the space reserved in their logs (the store stays usable)."""
        try:
            # While the leases are still held: no other writer's head can come in between.
            for instance_id in list(self._unsaved_heads):
                self._save_unsaved_head(instance_id)
        finally:
            for instance_id in list(self._reserved):
                self._give_back_reserved(instance_id)
            for instance_id in list(self._descriptors):
                self._forget_descriptor(instance_id)
            self._leases.close()

    def acquire_lease(self, instance_id: str, owner: str) -> str | None:
        """An exclusive lock on the instance's lease file, held until released or until this
        process ends (see `durable.stores.locks`)."""
        holder = self._leases.acquire(instance_id, owner)
        if holder is None:
            # Where the log ended when this object last looked may have changed since.
            self._ends.pop(instance_id, None)
        return holder

    def release_lease(self, instance_id: str, owner: str) -> None:
        """Write the head of the latest append (if not yet written), give back the space
        reserved in the log and end the lease."""
        try:
            self._give_back_reserved(instance_id)
            if self._leases.holds(instance_id):
                self._save_unsaved_head(instance_id)
        finally:
            self._leases.release(instance_id)

    def _save_unsaved_head(self, instance_id: str) -> None:
        """Write the head given with the latest append to the head file (its record is
        already synced, so the file is never ahead of the log)."""
        head = self._unsaved_heads.get(instance_id)
        if head is None:
            return
        if self._log_file(instance_id).exists():  # else deleted behind this object: no head
            self._save_head(instance_id, head)
        self._unsaved_heads.pop(instance_id, None)

    def _save_head(self, instance_id: str, head: bytes) -> None:
        temporary, _ = _write_temporary(self._states, frame(head))
        try:
            os.replace(temporary, self._head_file(instance_id))
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(self._states)

    def _give_back_reserved(self, instance_id: str) -> None:
        """Cut the log back to its records: the space reserved past them goes with the lease.
        Where that cannot be done (a failed write made their end unknown, the file is gone),
        the zeros stay, which every reader skips and the next writer cuts off."""
        reserved = self._reserved.pop(instance_id, None)
        end = self._ends.get(instance_id)
        if reserved is not None and end is not None:
            with contextlib.suppress(OSError):
                os.truncate(self._log_path(instance_id), end)

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
        *,
        head: bytes | None = None,
    ) -> None:
        path = self._log_file(instance_id)
        self._forget_descriptor(instance_id)
        fault = self._faults.next_write()
        if fault == "before":
            die()
        self._write_whole(instance_id, path, b"".join(frame(r) for r in records), fault, head)

    def _write_whole(
        self,
        instance_id: str,
        path: Path,
        data: bytes,
        fault: str | None,
        head: bytes | None = None,
    ) -> None:
        """Put `data` in place as the whole log, then (once it is durable) the head: `head`,
        else the head of the latest append not yet written."""
        if fault == "torn":
            _write_temporary(self._states, data[: len(data) // 2])
            die()
        temporary, reserved = _write_temporary(
            self._states, data, reserve=self._leases.holds(instance_id)
        )
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(self._states)
        self._ends[instance_id] = len(data)
        if reserved:
            self._reserved[instance_id] = len(data) + _RESERVE
        else:
            self._reserved.pop(instance_id, None)
        if head is None:
            head = self._unsaved_heads.get(instance_id)
        if head is not None:
            self._save_head(instance_id, bytes(head))
            self._unsaved_heads.pop(instance_id, None)
        if fault == "after":
            die()

    def delete_instance(self, instance_id: str) -> None:
        path = self._log_file(instance_id)
        self._forget_descriptor(instance_id)
        path.unlink(missing_ok=True)
        self._head_file(instance_id).unlink(missing_ok=True)
        self._unsaved_heads.pop(instance_id, None)
        self._leases.forget(instance_id)
        self._ends.pop(instance_id, None)
        self._reserved.pop(instance_id, None)
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
        temporary, _ = _write_temporary(inbox, frame(data))
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
