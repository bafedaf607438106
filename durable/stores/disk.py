"""`DiskStateStore`: one directory, one checksummed file per record and per event.

Writes go to a temporary file that is fsynced, renamed over the target (or hard-linked into
place for events, which never overwrites) and followed by an fsync of the directory. A
record whose length or checksum does not match is refused, never half-loaded.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
import uuid
from pathlib import Path

from .._errors import CorruptStateError
from .._ids import validate_instance_id
from .base import StateStore

_MAGIC = b"DURABLE\x00"
_FORMAT = 1
_HEADER = struct.Struct(">8sHQ32s")  # magic, format, payload length, sha256 of payload


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(_MAGIC, _FORMAT, len(payload), hashlib.sha256(payload).digest()) + payload


def unframe(data: bytes, what: str) -> bytes:
    """The payload of a framed record, or `CorruptStateError` saying what is wrong."""
    if len(data) < _HEADER.size:
        raise CorruptStateError(
            f"{what} is truncated ({len(data)} bytes, header is {_HEADER.size})"
        )
    magic, version, length, checksum = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CorruptStateError(f"{what} is not a durable record (bad magic number)")
    if version != _FORMAT:
        raise CorruptStateError(f"{what} has record format {version}; this version reads {_FORMAT}")
    payload = data[_HEADER.size :]
    if len(payload) != length:
        raise CorruptStateError(f"{what} is truncated ({len(payload)} of {length} payload bytes)")
    if hashlib.sha256(payload).digest() != checksum:
        raise CorruptStateError(f"{what} failed its checksum")
    return payload


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
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


class DiskStateStore(StateStore):
    """Records under ``<path>/state/``, events under ``<path>/events/<instance id>/``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._states = self.path / "state"
        self._inboxes = self.path / "events"
        self._states.mkdir(parents=True, exist_ok=True)
        self._inboxes.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"DiskStateStore({str(self.path)!r})"

    def _state_file(self, instance_id: str) -> Path:
        return self._states / f"{validate_instance_id(instance_id)}.state"

    def _inbox(self, instance_id: str) -> Path:
        return self._inboxes / validate_instance_id(instance_id)

    def read_state(self, instance_id: str) -> bytes | None:
        path = self._state_file(instance_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            return unframe(data, f"the state file {path}")
        except CorruptStateError as error:
            raise CorruptStateError(
                f"instance {instance_id!r}: {error}; it was not loaded. Restore the file from a "
                "backup, or delete it to forget the instance"
            ) from None

    def write_state(self, instance_id: str, data: bytes) -> None:
        path = self._state_file(instance_id)
        temporary = _write_temporary(self._states, frame(data))
        try:
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_directory(self._states)

    def delete_state(self, instance_id: str) -> None:
        self._state_file(instance_id).unlink(missing_ok=True)
        inbox = self._inbox(instance_id)
        if inbox.exists():
            for event in inbox.iterdir():
                event.unlink(missing_ok=True)
            inbox.rmdir()
        _fsync_directory(self._states)

    def list_instances(self) -> list[str]:
        return sorted(p.name[: -len(".state")] for p in self._states.glob("*.state"))

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
