"""The storage contract every store implements: per-instance record logs and inboxes.

A store moves opaque bytes; what they mean belongs to the backend. Each write is atomic and
durable when it returns, and a store write is the unit the journal contract counts.

A store that keeps heads (`StateStore.keeps_heads`) also keeps, per instance, the latest
*head* handed to it with a record write: opaque bytes the backend signs to name the end of
the log, so that a log cut back to an earlier prefix is told from a whole one. A head is
never ahead of the records on durable storage: after any crash, the stored head was given
with a record that is durably in the log, or with an earlier one. Read it before the records.
"""

from __future__ import annotations

import threading
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class InstanceSummary:
    """What a write leaves an instance as, for stores that index instances (a worker asks
    such a store which instances are due instead of reading every one)."""

    status: str
    #: The event a waiting instance waits for.
    waiting_for: str | None = None
    #: When a waiting instance times out (epoch seconds).
    wake_at: float | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """A due instance whose lease a store's ``claim_due`` took for a runner."""

    instance_id: str
    #: The instance's version in the store when claimed (its last write and newest event),
    #: opaque: hand it back in ``claim_due(skip=...)`` to leave the instance out until it
    #: changes.
    mark: tuple[Any, ...]


class StateStore(ABC):
    """Where `DurableBackend` keeps instance records and events.

    An instance's state is a log of records, oldest first: the backend appends one record per
    write and now and then replaces the whole log with a compacted one.

    A subclass may instead implement only the original package's two methods,
    ``load(instance_id) -> dict | None`` and ``save(instance_id, state)`` (plain or ``async``):
    it is then a *whole-state* store (`whole_state`), and `DurableBackend` saves the whole
    state dict at every write and keeps events under the key ``"<instance id>/events"``.
    """

    #: True for a subclass that implements `load`/`save` rather than the record methods.
    whole_state: bool = False
    #: True for a store that keeps the head given with record writes (`read_head`). The
    #: backend passes ``head=`` only to such stores, so a subclass written before heads
    #: existed, whose write methods take no `head`, keeps working.
    keeps_heads: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not (callable(getattr(cls, "load", None)) and callable(getattr(cls, "save", None))):
            return
        missing = [
            name
            for name in _RECORD_METHODS
            if getattr(getattr(cls, name, None), "__isabstractmethod__", False)
        ]
        if missing:
            cls.whole_state = True
            for name in missing:
                setattr(cls, name, _not_a_record_store(name))

    @abstractmethod
    def read_records(self, instance_id: str) -> list[bytes]:
        """The records of `instance_id`, oldest first; empty for an unknown instance."""

    @abstractmethod
    def append_record(
        self,
        instance_id: str,
        record: bytes,
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> None:
        """Add one record to the log of `instance_id`: all of it or nothing, durable on return
        (or, for a store committing writes in groups, an awaitable that completes once it is
        durable). `summary`, when given, is the instance as this record leaves it (stores that
        index instances keep it in the same transaction; others may ignore it). `head`, given
        only to a store that `keeps_heads`, becomes the instance's head once the record is
        durable; a write without one leaves the head as it was."""

    @abstractmethod
    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> None:
        """Replace the whole log of `instance_id` atomically and durably (compaction);
        `summary` and `head` as for `append_record`."""

    def read_head(self, instance_id: str) -> bytes | None:
        """The latest head given with a record write of `instance_id` (see the module
        docstring), or None: no head was given, or this store does not keep heads."""
        return None

    @abstractmethod
    def delete_instance(self, instance_id: str) -> None:
        """Forget `instance_id`: its records, its head and its pending events."""

    @abstractmethod
    def list_instances(self) -> list[str]:
        """Ids of every instance with a record."""

    @abstractmethod
    def append_event(self, instance_id: str, data: bytes) -> int:
        """Add an event to the inbox of `instance_id`; returns its id (ids only grow)."""

    @abstractmethod
    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        """The pending events of `instance_id`, oldest first."""

    @abstractmethod
    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        """Remove consumed events; ids already gone are ignored."""

    # -- leases: one runner per instance ----------------------------------------------------
    def acquire_lease(self, instance_id: str, owner: str) -> str | None:
        """Take the lease that lets one runner run `instance_id`: None when it is now held
        by `owner`, else a description of who holds it. It lasts until `release_lease`, or
        until the holder's process ends. This default keeps leases in this store object
        only; stores that several processes share override it."""
        with _lease_lock:
            held = self.__dict__.setdefault("_leases_held", {})
            if instance_id in held:
                return held[instance_id]
            held[instance_id] = owner
            return None

    def release_lease(self, instance_id: str, owner: str) -> None:
        """End the lease `owner` holds on `instance_id` (nothing if it holds none)."""
        with _lease_lock:
            held = self.__dict__.get("_leases_held", {})
            if held.get(instance_id) == owner:
                del held[instance_id]


_lease_lock = threading.Lock()


def checked_log(rows: Iterable[tuple[Any, ...]], refuse: Callable[[str], None]) -> list[bytes]:
    """The records of one log from its stored `rows` (position, data, CRC-32 of the data or
    None for a row written without one), oldest first: each must sit at its place (0, 1,
    2, ...) and match its checksum, or `refuse` is called with the problem (and raises)."""
    records = []
    for expected, (position, data, checksum) in enumerate(rows):
        if position != expected:
            refuse(
                f"record {expected + 1} of its log is at position {position}, where "
                f"{expected} was expected (a record is missing or out of place)"
            )
        if checksum is not None and zlib.crc32(data) != checksum:
            refuse(
                f"the record at position {position} (record {expected + 1} of its log) "
                "failed its checksum"
            )
        records.append(bytes(data))
    return records


_RECORD_METHODS = (
    "read_records", "append_record", "replace_records", "delete_instance", "list_instances",
    "append_event", "read_events", "delete_events",
)  # fmt: skip


def _not_a_record_store(name: str):
    def whole_state_only(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} is a whole-state store (it implements load and save), so it "
            f"has no {name}(); use it through DurableBackend, which saves whole states (a "
            "worker needs a store of records, such as SQLiteStateStore)"
        )

    whole_state_only.__name__ = name
    return whole_state_only
