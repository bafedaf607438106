"""The storage contract every store implements: instance records and per-instance inboxes.

A store moves opaque bytes; what they mean belongs to the backend. Every write is atomic and
durable when it returns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod


class StateStore(ABC):
    """Where `DurableBackend` keeps instance records and events."""

    @abstractmethod
    def read_state(self, instance_id: str) -> bytes | None:
        """The record last written for `instance_id`, or None."""

    @abstractmethod
    def write_state(self, instance_id: str, data: bytes) -> None:
        """Replace the record of `instance_id`: all of it or nothing, durable on return."""

    @abstractmethod
    def delete_state(self, instance_id: str) -> None:
        """Forget `instance_id` and its pending events."""

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
