"""Two `SQLiteStateStore` objects on one database file in one process.

Closing any descriptor of a file drops every POSIX lock the process holds on it, SQLite's
included. A second store object (say, a step looking at a child instance) that read the file
with a plain ``open()`` dropped the first one's locks: the next process to close the database
then took it for unused, checkpointed it and deleted its WAL, and the first store's later
commits went into a deleted file, lost to every other process.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from durable import SQLiteStateStore, StateFormatError

from .test_sqlite_store import files_of


@pytest.fixture
def db_path(tmp_path) -> Path:
    return tmp_path / "store.db"


def in_another_process(script: str, db_path: Path) -> str:
    """Run `script` (with `path`, the database path, defined) in a new process; its output."""
    prelude = f"from durable import SQLiteStateStore\npath = {str(db_path)!r}\n"
    result = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def a_second_store_reads_and_closes(db_path: Path) -> None:
    second = SQLiteStateStore(db_path, group_commit=False)
    assert second.read_records("order-7") != []
    second.close()


def another_process_opens_and_closes(db_path: Path) -> None:
    # The last connection to close checkpoints the WAL and deletes it, if it can lock the
    # database for itself: only when this process's locks on it are gone.
    in_another_process("SQLiteStateStore(path).close()", db_path)


def records_seen_by_another_process(db_path: Path) -> list[bytes]:
    seen = in_another_process("print(SQLiteStateStore(path).read_records('order-7'))", db_path)
    return ast.literal_eval(seen)


@pytest.mark.slow
def test_a_second_store_object_closed_leaves_the_first_ones_commits_durable(db_path):
    first = SQLiteStateStore(db_path, group_commit=False)
    first.append_record("order-7", b"one")
    a_second_store_reads_and_closes(db_path)
    another_process_opens_and_closes(db_path)
    first.append_record("order-7", b"two")
    first.append_record("order-7", b"three")
    assert first.read_records("order-7") == [b"one", b"two", b"three"]
    assert records_seen_by_another_process(db_path) == [b"one", b"two", b"three"]
    first.close()


@pytest.mark.slow
async def test_a_second_store_object_closed_leaves_group_commits_of_the_first_durable(db_path):
    first = SQLiteStateStore(db_path)
    await first.append_record("order-7", b"one")
    a_second_store_reads_and_closes(db_path)
    another_process_opens_and_closes(db_path)
    for record in (b"two", b"three"):
        await first.append_record("order-7", record)
    assert first.read_records("order-7") == [b"one", b"two", b"three"]
    assert records_seen_by_another_process(db_path) == [b"one", b"two", b"three"]
    first.close()


@pytest.mark.slow
def test_a_second_store_object_writing_and_closing_leaves_the_first_one_working(db_path):
    first = SQLiteStateStore(db_path, group_commit=False)
    first.append_record("order-7", b"one")
    second = SQLiteStateStore(db_path, group_commit=False)
    second.append_record("order-8", b"child")
    second.append_event("order-7", b"from the child")
    second.close()
    another_process_opens_and_closes(db_path)
    first.append_record("order-7", b"two")
    assert [data for _, data in first.read_events("order-7")] == [b"from the child"]
    assert records_seen_by_another_process(db_path) == [b"one", b"two"]
    first.close()


@pytest.mark.slow
def test_leases_of_the_first_store_object_stay_held_after_a_second_one_closes(db_path):
    first = SQLiteStateStore(db_path, group_commit=False)
    first.append_record("order-7", b"one")
    assert first.acquire_lease("order-7", "the first store") is None
    a_second_store_reads_and_closes(db_path)
    take_it = "print(SQLiteStateStore(path).acquire_lease('order-7', 'a child process'))"
    assert "the first store" in in_another_process(take_it, db_path)
    first.release_lease("order-7", "the first store")
    assert in_another_process(take_it, db_path) == "None"
    first.close()


@pytest.mark.parametrize(
    "contents",
    [b"hello", b"not a database\n" * 500, b"SQLite format 2\x00" + bytes(200)],
    ids=["shorter than a header", "text", "another header"],
)
def test_a_file_that_is_not_sqlite_is_still_refused_and_left_unchanged(tmp_path, contents):
    path = tmp_path / "notes.db"
    path.write_bytes(contents)
    before = files_of(tmp_path)
    with pytest.raises(StateFormatError, match="not an SQLite database"):
        SQLiteStateStore(path)
    assert files_of(tmp_path) == before
