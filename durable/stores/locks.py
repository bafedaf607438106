"""Instance leases held as operating-system file locks: one runner per instance on a machine.

A lease is an exclusive `flock` on ``<directory>/<instance id>.lock``, held by an open file
for as long as the run lasts. The kernel ends it when the holder's process dies, however it
dies, so a crashed runner never blocks the next one and no expiry has to pass first.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from .._ids import validate_instance_id


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
