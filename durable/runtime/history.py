"""The history of an instance: one small summary per durable operation (never its result),
newest `JournalPolicy.history_limit` kept, so ended instances still show what happened.

Summaries are made lazily from the journal entries the writes carry: a step adds a reference
to its entry, and only reading the history (or a compaction, which stores it) summarizes.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar

from .journal import PENDING, entry_status

#: Summaries kept per instance unless its `JournalPolicy` says otherwise.
DEFAULT_HISTORY_LIMIT = 1000

#: The fields of a stored summary, in the order of its tuple.
ROW_FIELDS = ("seq", "kind", "function", "status", "attempts", "started_at", "ended_at", "error")
_STATUS, _STARTED = ROW_FIELDS.index("status"), ROW_FIELDS.index("started_at")


class History:
    """The summaries of an instance's operations, oldest first (tuples of `ROW_FIELDS`, as
    stored), and the entries written since they were last made (`add`)."""

    __slots__ = ("_rows", "_dropped", "_pending", "entries", "limit")

    def __init__(self, rows: Any = None, limit: int | None = DEFAULT_HISTORY_LIMIT) -> None:
        if isinstance(rows, History):
            rows = rows.stored()
        self._rows: list[tuple[Any, ...]] = list(rows or ())
        #: How many summaries were dropped from the front of `_rows` (over the limit).
        self._dropped = 0
        #: seq -> place (position in `_rows` plus `_dropped`) of its latest summary, while
        #: that one is in flight: a later entry of it completes that summary. Only those
        #: are indexed, and by a place that dropping older rows does not move, so trimming
        #: a long history at every compaction does not index it all again.
        self._pending: dict[int, int] = {}
        for place, row in enumerate(self._rows):
            self._note(row, place)
        #: (seq, entry, written at) of the writes since the rows were last made.
        self.entries: list[tuple[int, dict[str, Any], float | None]] = []
        self.limit: int | None = limit

    def __bool__(self) -> bool:
        return bool(self._rows or self.entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, History) and self.stored() == other.stored()

    __hash__: ClassVar[None] = None  # type: ignore[assignment]

    def add(self, seq: int, entry: dict[str, Any], written_at: float | None) -> None:
        self.entries.append((seq, entry, written_at))

    def stored(self, written_now: float | None = None) -> list[tuple[Any, ...]]:
        """The summaries as stored, with the entries added since summarized; an entry added
        without its write's time (being written now) takes `written_now`."""
        rows, pending, dropped = self._rows, self._pending, self._dropped
        for seq, entry, written_at in self.entries:
            place = pending.pop(seq, None) if pending else None
            if place is not None and place >= dropped:
                at = place - dropped
                row = rows[at] = _summary(seq, entry, written_at or written_now, rows[at][_STARTED])
            else:
                place = dropped + len(rows)
                row = _summary(seq, entry, written_at or written_now, None)
                rows.append(row)
            if row[_STATUS] == PENDING:
                pending[seq] = place
        self.entries = []
        if self.limit is not None and len(rows) > self.limit:
            excess = len(rows) - self.limit
            del rows[:excess]
            dropped = self._dropped = dropped + excess
            if pending:
                self._pending = {seq: place for seq, place in pending.items() if place >= dropped}
        return list(rows)

    def _note(self, row: tuple, place: int) -> None:
        """Index `row`, the latest summary of its operation, at `place` (see `_pending`)."""
        if row[_STATUS] == PENDING:
            self._pending[row[0]] = place
        else:
            self._pending.pop(row[0], None)

    def rows(self) -> list[dict[str, Any]]:
        """Every summary kept, oldest first: ``seq``, ``kind``, ``function`` (what was
        called, waited for or slept), ``status``, ``attempts``, ``started_at``,
        ``ended_at`` (None while in flight), ``duration``, ``error`` (a one-line summary)."""
        shown = []
        for row in self.stored():
            fields = dict(zip(ROW_FIELDS, row, strict=True))
            started, ended = fields["started_at"], fields["ended_at"]
            fields["duration"] = (
                None if ended is None or started is None else max(0.0, ended - started)
            )
            shown.append(fields)
        return shown


def _summary(
    seq: int, entry: dict[str, Any], written_at: float | None, started_at: float | None
) -> tuple[Any, ...]:
    kind = entry.get("kind", "call")
    status = entry.get("status") or entry_status(entry)  # older entries may have none
    if kind == "call":
        function = entry.get("function_id")
        if type(function) is str:
            # One string per function, not one per call: a compaction pickles each once
            # and refers to it in the other rows (a quarter of the history's cost).
            function = sys.intern(function)
    elif kind == "event":
        function = f"wait_for_event({entry.get('name')!r})"
    elif kind == "timer":
        function = "sleep"
    else:
        function = kind
    started = started_at if started_at is not None else entry.get("started_at", written_at)
    return (
        seq,
        kind,
        function,
        status,
        entry.get("attempts", 1),
        started,
        None if status == PENDING else written_at,
        entry.get("error_summary"),
    )


def history_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The operation summaries a stored state holds (a `History` when folded from records,
    a list in a whole state), as `History.rows` shows them."""
    return History(state.get("history"), limit=None).rows()


def timeline(state: dict[str, Any]) -> list[dict[str, Any]]:
    """What happened to an instance, oldest first: its operations' summaries (`History.rows`)
    and the operator's changes to it (``kind`` "operator", the action as ``function``, its
    ``detail``), by time."""
    rows = history_rows(state)
    for change in state.get("audit") or ():
        at = change.get("at")
        rows.append(
            {
                "seq": None,
                "kind": "operator",
                "function": change.get("action"),
                "status": "done",
                "attempts": None,
                "started_at": at,
                "ended_at": at,
                "error": None,
                "duration": 0.0,
                "detail": change.get("detail"),
            }
        )
    rows.sort(key=lambda row: row["started_at"] or 0.0)
    return rows
