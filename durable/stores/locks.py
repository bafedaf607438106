"""Instance leases held as operating-system file locks: one runner per instance on a machine.

A lease is an exclusive `flock` on ``<directory>/<instance id>.lock``, held by an open file
for as long as the run lasts. The kernel ends it when the holder's process dies, however it
dies, so a crashed runner never blocks the next one and no expiry has to pass first.
Where there is no `flock` (Windows), `DatabaseLeases` holds the same leases through SQLite.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

from .._ids import validate_instance_id

try:
    import fcntl
except ImportError:  # not POSIX (Windows): see `DatabaseLeases` and `require_file_locks`
    fcntl = None  # type: ignore[assignment]

#: Whether this platform has POSIX file locks (`fcntl.flock`).
HAS_FILE_LOCKS = fcntl is not None


def require_file_locks(feature: str, instead: str) -> None:
    """Refuse `feature` where there are no POSIX file locks, saying what to use instead."""
    if not HAS_FILE_LOCKS:
        raise NotImplementedError(
            f"{feature} needs POSIX file locks (fcntl), which this platform ({sys.platform}) "
            f"does not have; {instead}"
        )


def machine_leases(directory: Path) -> FileLeases | DatabaseLeases:
    """Leases under `directory` that end with their holder's process, on this platform."""
    return FileLeases(directory) if HAS_FILE_LOCKS else DatabaseLeases(directory)


class FileLeases:
    """The leases of one store directory, as taken by this store object."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, instance_id: str, owner: str) -> str | None:
        """Take the lease of `instance_id`: None when taken, else who holds it."""
        path = self.directory / f"{validate_instance_id(instance_id)}.lock"
        with self._lock:
            if instance_id in self._held:
                return "another run through the same store object"
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(descriptor, 512, 0).decode("utf-8", "replace").strip()
                os.close(descriptor)
                return holder or "another process"
            except BaseException:
                os.close(descriptor)
                raise
            note = f"{owner}, process {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            os.ftruncate(descriptor, 0)
            os.pwrite(descriptor, note.encode(), 0)
            self._held[instance_id] = descriptor
            return None

    def holds(self, instance_id: str) -> bool:
        """Whether this store object holds the lease of `instance_id`."""
        return instance_id in self._held

    def release(self, instance_id: str) -> None:
        with self._lock:
            descriptor = self._held.pop(instance_id, None)
            if descriptor is not None:
                os.ftruncate(descriptor, 0)
                os.close(descriptor)  # closing the file ends its lock

    def forget(self, instance_id: str) -> None:
        """Remove the lock file of a deleted instance, if no one holds its lease."""
        path = self.directory / f"{validate_instance_id(instance_id)}.lock"
        try:
            descriptor = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except BlockingIOError:
            pass
        finally:
            os.close(descriptor)

    def close(self) -> None:
        for instance_id in list(self._held):
            self.release(instance_id)


class DatabaseLeases:
    """The leases of one store directory without `flock`: each is an exclusive transaction
    held open on ``<directory>/<instance id>.lockdb``, an empty SQLite database. SQLite takes
    it with the platform's own file locks, which also end with the holder's process; who holds
    a lease is noted in ``<instance id>.holder`` (a locked database cannot be read)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._held: dict[str, sqlite3.Connection] = {}
        self._lock = threading.Lock()

    def _path(self, instance_id: str) -> Path:
        return self.directory / f"{validate_instance_id(instance_id)}.lockdb"

    def acquire(self, instance_id: str, owner: str) -> str | None:
        """Take the lease of `instance_id`: None when taken, else who holds it."""
        path = self._path(instance_id)
        note = path.with_suffix(".holder")
        with self._lock:
            if instance_id in self._held:
                return "another run through the same store object"
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            connection = _locked_database(path)
            if connection is None:
                try:
                    return note.read_text("utf-8", "replace").strip() or "another process"
                except OSError:
                    return "another process"
            try:
                note.write_text(
                    f"{owner}, process {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}",
                    "utf-8",
                )
            except BaseException:
                connection.close()
                raise
            self._held[instance_id] = connection
            return None

    def holds(self, instance_id: str) -> bool:
        """Whether this store object holds the lease of `instance_id`."""
        return instance_id in self._held

    def release(self, instance_id: str) -> None:
        with self._lock:
            connection = self._held.pop(instance_id, None)
            if connection is not None:
                with contextlib.suppress(OSError):
                    self._path(instance_id).with_suffix(".holder").unlink(missing_ok=True)
                connection.close()  # ends its transaction, so its lock

    def forget(self, instance_id: str) -> None:
        """Remove the lock files of a deleted instance, if no one holds its lease."""
        path = self._path(instance_id)
        if not path.exists():
            return
        connection = _locked_database(path)
        if connection is None:
            return
        # Closed first: Windows removes no file that is open.
        connection.close()
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
            path.with_suffix(".holder").unlink(missing_ok=True)

    def close(self) -> None:
        for instance_id in list(self._held):
            self.release(instance_id)


def _locked_database(path: Path) -> sqlite3.Connection | None:
    """A connection holding an exclusive lock on the SQLite database at `path` (created
    empty and private if missing), or None when another connection holds it."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    connection = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        # The journal in memory: no journal file is made beside the lock (nothing is written).
        connection.execute("PRAGMA journal_mode = MEMORY")
        connection.execute("BEGIN EXCLUSIVE")
    except sqlite3.OperationalError as error:
        connection.close()
        if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            return None
        raise
    except BaseException:
        connection.close()
        raise
    return connection
