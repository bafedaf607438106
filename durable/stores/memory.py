"""`InMemoryStateStore`: the store of one process's lifetime (tests, the default backend)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from .._ids import validate_instance_id
from .base import InstanceSummary, StateStore


class InMemoryStateStore(StateStore):
    """Keeps records, heads and events in dictionaries; safe to use from several threads."""

    keeps_heads = True

    def __init__(self) -> None:
        self._logs: dict[str, list[bytes]] = {}
        #: instance id -> its head, set under the lock with the record it came with.
        self._heads: dict[str, bytes] = {}
        self._events: dict[str, dict[int, bytes]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return "InMemoryStateStore()"

    def read_records(self, instance_id: str) -> list[bytes]:
        validate_instance_id(instance_id)
        with self._lock:
            return list(self._logs.get(instance_id, ()))

    def read_head(self, instance_id: str) -> bytes | None:
        validate_instance_id(instance_id)
        with self._lock:
            return self._heads.get(instance_id)

    def append_record(
        self,
        instance_id: str,
        record: bytes,
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> None:
        validate_instance_id(instance_id)
        record = record if type(record) is bytes else bytes(record)
        with self._lock:
            log = self._logs.get(instance_id)
            if log is None:
                log = self._logs[instance_id] = []
            log.append(record)
            if head is not None:
                self._heads[instance_id] = bytes(head)

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> None:
        validate_instance_id(instance_id)
        with self._lock:
            self._logs[instance_id] = [bytes(record) for record in records]
            if head is not None:
                self._heads[instance_id] = bytes(head)

    def delete_instance(self, instance_id: str) -> None:
        validate_instance_id(instance_id)
        with self._lock:
            self._logs.pop(instance_id, None)
            self._heads.pop(instance_id, None)
            self._events.pop(instance_id, None)

    def list_instances(self) -> list[str]:
        with self._lock:
            return sorted(name for name, log in self._logs.items() if log)

    def append_event(self, instance_id: str, data: bytes) -> int:
        validate_instance_id(instance_id)
        with self._lock:
            event_id = next(self._ids)
            self._events.setdefault(instance_id, {})[event_id] = bytes(data)
            return event_id

    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        validate_instance_id(instance_id)
        with self._lock:
            return sorted(self._events.get(instance_id, {}).items())

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        validate_instance_id(instance_id)
        with self._lock:
            inbox = self._events.get(instance_id, {})
            for event_id in event_ids:
                inbox.pop(event_id, None)
