"""Stores that count their instance writes and "die" right after a chosen one (in-process
crash simulation for the corpus and the journal tests; `durable.testing` kills for real)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from durable.stores.base import InstanceSummary


class SimulatedCrash(BaseException):
    """The process dying right after a store write returned: not an `Exception`, so nothing
    in the runtime records it as the workflow's failure."""


@dataclass
class WriteCounter:
    """Instance writes across the store objects that share it; crashes once, right after
    write number `crash_after`."""

    crash_after: int | None = None
    writes: int = 0

    def wrote(self) -> None:
        self.writes += 1
        if self.writes == self.crash_after:
            self.crash_after = None
            raise SimulatedCrash(self.writes)


class CountsWrites:
    """Mixin for a `StateStore`: every record write ticks `self.counter`."""

    counter: WriteCounter

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
