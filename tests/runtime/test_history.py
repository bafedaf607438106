"""The history's summaries: an operation in flight is completed in its own row, however many
older rows were dropped over the limit since it was summarized."""

from __future__ import annotations

from durable.runtime.history import ROW_FIELDS, History

_STATUS = ROW_FIELDS.index("status")
_STARTED = ROW_FIELDS.index("started_at")


def call(status: str, started_at: float | None = None) -> dict:
    entry = {"function_id": "m.f", "args_digest": "0" * 16, "status": status}
    if started_at is not None:
        entry["started_at"] = started_at
    return entry


def summarized(history: History, *entries: tuple[int, dict]) -> list[tuple]:
    for seq, entry in entries:
        history.add(seq, entry, 100.0 + seq)
    return history.stored()


def test_a_call_in_flight_is_completed_in_its_row_after_older_rows_were_dropped():
    history = History(limit=3)
    summarized(
        history, *((seq, call("SUCCEEDED")) for seq in range(1, 5)), (5, call("PENDING", 7.0))
    )
    rows = summarized(history, (6, call("SUCCEEDED")), (5, call("SUCCEEDED")))
    assert [row[0] for row in rows] == [4, 5, 6]
    assert rows[1][_STATUS] == "SUCCEEDED"
    assert rows[1][_STARTED] == 7.0  # the start of the attempt in flight is kept


def test_a_call_whose_row_in_flight_was_dropped_gets_a_row_of_its_own():
    history = History(limit=2)
    summarized(history, (1, call("PENDING", 7.0)), (2, call("SUCCEEDED")))
    summarized(history, (3, call("SUCCEEDED")))
    rows = summarized(history, (1, call("SUCCEEDED")))
    assert [(row[0], row[_STATUS]) for row in rows] == [(3, "SUCCEEDED"), (1, "SUCCEEDED")]


def test_a_call_in_flight_in_stored_rows_is_completed_in_its_row():
    stored = summarized(History(), (1, call("PENDING", 7.0)), (2, call("SUCCEEDED")))
    rows = summarized(History(stored), (1, call("SUCCEEDED")))
    assert [(row[0], row[_STATUS]) for row in rows] == [(1, "SUCCEEDED"), (2, "SUCCEEDED")]
    assert rows[0][_STARTED] == 7.0


def test_a_settled_call_run_again_at_its_sequence_number_gets_a_new_row():
    history = History()
    summarized(history, (1, call("SUCCEEDED")))
    rows = summarized(history, (1, call("PENDING")))
    assert [(row[0], row[_STATUS]) for row in rows] == [(1, "SUCCEEDED"), (1, "PENDING")]
