"""Stores that count their instance writes and "die" right after a chosen one (in-process
crash simulation for the corpus and the journal tests; `durable.testing` kills for real)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from durable.stores.base import InstanceSummary


class SimulatedCrash(BaseException):
    """The process dying right after a store write returned: not an `Exception`, so nothing
    in the runtime records it as the workflow's failure."""


class StoreUnreachable(ConnectionError):
    """A read of the store that failed, as when its server restarts: the store's failure,
    which must never become the workflow's."""


@dataclass
class WriteCounter:
    """Instance writes across the store objects that share it; crashes once, right after
    write number `crash_after`. Counts reads too, and fails read number `fail_read` once."""

    crash_after: int | None = None
    writes: int = 0
    fail_read: int | None = None
    reads: int = 0

    def wrote(self) -> None:
        self.writes += 1
        if self.writes == self.crash_after:
            self.crash_after = None
            raise SimulatedCrash(self.writes)

    def read(self) -> None:
        self.reads += 1
        if self.reads == self.fail_read:
            self.fail_read = None
            raise StoreUnreachable(f"read {self.reads} of the store failed")


class CountsWrites:
    """Mixin for a `StateStore`: every record write ticks `self.counter`, and so does every
    read of records or events."""

    counter: WriteCounter

    def read_records(self, instance_id: str):
        self.counter.read()
        return super().read_records(instance_id)

    def read_events(self, instance_id: str):
        self.counter.read()
        return super().read_events(instance_id)

    def append_record(
        self, instance_id: str, record: bytes, summary: InstanceSummary | None = None
    ):
        unsettled = super().append_record(instance_id, record, summary)
        self.counter.wrote()
        return unsettled

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
    ):
        unsettled = super().replace_records(instance_id, records, summary)
        self.counter.wrote()
        return unsettled
