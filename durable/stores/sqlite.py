"""`SQLiteStateStore`: every instance's record log, inbox and metadata in one SQLite file.

It owns the schema (tables, its version number) and turns each store write into one durable
transaction; several threads and processes may share the file, SQLite serializes the writers.

Every record and event row carries the CRC-32 of its bytes (``checksum``), checked on every
read, and a log's positions must run 0, 1, 2, ... without a gap: damage SQLite cannot see
(a flipped bit inside a blob, a lost row) is `CorruptStateError` naming the instance and the
record or event, never bytes handed on. A NULL checksum means the row was written without one:
by a process of an earlier version still connected while the file was migrated to schema 3
(the migration itself gives every existing row its checksum); such a row is read unchecked.

An instance's head (`StateStore.keeps_heads`) is the ``head`` column of its ``instances`` row,
written in the transaction of the record it comes with, so it is never ahead of the records.

The file is never opened with a plain ``open()`` while it may be in use: closing any
descriptor of a file drops every POSIX lock the process holds on it, SQLite's included, so a
second store object on the same file in one process would break the first one's connection.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

from .._errors import CorruptStateError, StateFormatError
from .._ids import validate_instance_id
from .base import InstanceSummary, StateStore, checked_log
from .committer import GroupCommitter, running_loop
from .faults import FaultPlan, die
from .locks import machine_leases

#: `PRAGMA application_id` of a durable store ("DURA"): tells our files from other SQLite files.
APPLICATION_ID = 0x44555241
#: `PRAGMA user_version`: the schema of this version. Older schemas are migrated when the file
#: is opened (`_MIGRATIONS`); a newer one, or another number, is refused, never guessed.
SCHEMA_VERSION = 3
#: How long a write waits for another process's transaction before giving up.
BUSY_TIMEOUT_SECONDS = 10.0

_SQLITE_HEADER = b"SQLite format 3\x00"
#: Primary result codes that say the file is damaged; an error's extended code (such as 779,
#: SQLITE_CORRUPT_INDEX) has its primary code in the low byte (`_is_damage`).
_DAMAGED = (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
#: The SQL function the migration to schema 3 computes the checksums of existing rows with.
_CHECKSUM_FUNCTION = "durable_crc32"

#: Where a worker finds the due instances without reading them all: by status, then by the
#: deadline of the waiting ones (`due_instances`, `next_wake_at`).
_STATUS_INDEX = "CREATE INDEX instances_by_status ON instances (status, wake_at)"

_SCHEMA = (
    # checksum: the CRC-32 of data (NULL: written without one, see the module docstring).
    """CREATE TABLE records (
        instance_id TEXT NOT NULL,
        position INTEGER NOT NULL,
        data BLOB NOT NULL,
        checksum INTEGER,
        PRIMARY KEY (instance_id, position)
    )""",
    """CREATE TABLE events (
        event_id INTEGER PRIMARY KEY AUTOINCREMENT,
        instance_id TEXT NOT NULL,
        data BLOB NOT NULL,
        checksum INTEGER
    )""",
    "CREATE INDEX events_by_instance ON events (instance_id, event_id)",
    # status, waiting_for and wake_at are the instance's `InstanceSummary` as its last write
    # that set the status left it; NULL status: unknown (a row from schema 1, or records
    # written without a summary). head: the latest head given with a record write, or NULL.
    """CREATE TABLE instances (
        instance_id TEXT PRIMARY KEY,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        status TEXT,
        waiting_for TEXT,
        wake_at REAL,
        head BLOB
    )""",
    _STATUS_INDEX,
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
_TABLES = {"records", "events", "instances"}

#: schema version -> the statements that bring a file of that version to the next one, run in
#: one transaction with the new version number (all of it or none).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        # Existing rows get NULL: unknown, due until a worker reads them (`fill_summaries`)
        # or a write sets their summary.
        "ALTER TABLE instances ADD COLUMN status TEXT",
        "ALTER TABLE instances ADD COLUMN waiting_for TEXT",
        "ALTER TABLE instances ADD COLUMN wake_at REAL",
        _STATUS_INDEX,
    ),
    2: (
        # Every existing row gets its checksum now (one pass over the data, in the migration's
        # transaction); instances get no head until their next signed write.
        "ALTER TABLE records ADD COLUMN checksum INTEGER",
        f"UPDATE records SET checksum = {_CHECKSUM_FUNCTION}(data)",
        "ALTER TABLE events ADD COLUMN checksum INTEGER",
        f"UPDATE events SET checksum = {_CHECKSUM_FUNCTION}(data)",
        "ALTER TABLE instances ADD COLUMN head BLOB",
    ),
}

_APPEND_RECORD = (
    "INSERT INTO records (instance_id, position, data, checksum) "
    "SELECT :instance_id, COALESCE(MAX(position) + 1, 0), :data, :checksum FROM records "
    "WHERE instance_id = :instance_id"
)
_INSERT_RECORD = "INSERT INTO records (instance_id, position, data, checksum) VALUES (?, ?, ?, ?)"
#: The instance's row, in the transaction of each record write: :given says whether the
#: summary is; without one, a new row's summary is unknown and an existing one's stays. A
#: write without a head (NULL :head) leaves the head as it was.
_TOUCH_INSTANCE = (
    "INSERT INTO instances "
    "(instance_id, created_at, updated_at, status, waiting_for, wake_at, head) "
    "VALUES (:instance_id, :now, :now, :status, :waiting_for, :wake_at, :head) "
    "ON CONFLICT (instance_id) DO UPDATE SET updated_at = excluded.updated_at, "
    "status = CASE WHEN :given THEN excluded.status ELSE status END, "
    "waiting_for = CASE WHEN :given THEN excluded.waiting_for ELSE waiting_for END, "
    "wake_at = CASE WHEN :given THEN excluded.wake_at ELSE wake_at END, "
    "head = COALESCE(excluded.head, head)"
)
#: `_TOUCH_INSTANCE` for the most common write, a step: no summary, no head (two parameters,
#: none of which sqlite3 has to adapt, where None and booleans each cost a lookup).
_TOUCH_INSTANCE_TIME = (
    "INSERT INTO instances (instance_id, created_at, updated_at) "
    "VALUES (:instance_id, :now, :now) "
    "ON CONFLICT (instance_id) DO UPDATE SET updated_at = excluded.updated_at"
)

# The instances that can make progress (see `SQLiteStateStore.due_instances`). Each part but
# the last is a search of `instances_by_status`; the last starts from the (few) pending events
# and looks their instances up by key. UNION drops the duplicates.
#
# Waiting instances are due on *any* pending event, not only one named as they wait for: the
# name is inside the event's bytes, which the store does not decode (they are the backend's
# pickle, and unpickling a payload may need the user's modules), and `append_event` is not
# given it. So a waiting instance with an event of another name in its inbox is returned
# every round and the worker, which reads its events through the backend anyway, checks the
# name: one extra read per such instance and round, never a missed wake-up. Matching names
# here needs the backend to pass the name to `append_event` (an `events.name` column).
_DUE_INSTANCES = """
    SELECT instance_id, updated_at, status != 'running' FROM instances
        WHERE status IN ('enqueued', 'running')
    UNION
    SELECT instance_id, updated_at, 1 FROM instances
        WHERE status IN ('waiting', 'sleeping') AND wake_at <= :now
    UNION
    SELECT instance_id, updated_at, 1 FROM instances WHERE status IS NULL
    UNION
    SELECT i.instance_id, i.updated_at, 1
        FROM (SELECT DISTINCT instance_id FROM events) AS e
        CROSS JOIN instances AS i ON i.instance_id = e.instance_id
        WHERE i.status IN ('waiting', 'sleeping')
    ORDER BY 3, 2, 1
    LIMIT :limit
"""
_RUNNING_INSTANCES = (
    "SELECT instance_id FROM instances WHERE status = 'running' "
    "ORDER BY updated_at, instance_id LIMIT :limit"
)
_NEXT_WAKE_AT = (
    "SELECT MIN(wake_at) FROM instances WHERE status IN ('waiting', 'sleeping') "
    "AND wake_at > :after"
)
_NEXT_WAKE_AT_ANY = (
    "SELECT MIN(wake_at) FROM instances WHERE status IN ('waiting', 'sleeping') "
    "AND wake_at IS NOT NULL"
)


class SQLiteStateStore(StateStore):
    """Records, events and instance metadata in the SQLite database file `path` (WAL mode).

    Each write is one ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction, durable when it returns
    (a record's head, when given, is in the same transaction).
    With `group_commit` (the default), record writes made from a coroutine are committed by a
    thread instead, together with those of other coroutines, and return a future that
    completes after their COMMIT. Event ids come from an AUTOINCREMENT key: they only grow,
    across processes and deletions.
    """

    keeps_heads = True

    def __init__(self, path: str | os.PathLike[str], *, group_commit: bool = True) -> None:
        if os.fspath(path) in ("", ":memory:"):
            raise ValueError(
                f"SQLiteStateStore takes the path of a database file, not {os.fspath(path)!r}; "
                "use InMemoryStateStore() for a store that lives in memory"
            )
        self.path: Path = Path(path)
        # One connection behind a lock, shared by every thread (check_same_thread=False):
        # SQLite lets one writer at a time into a database anyway, and each call here is one
        # short statement or transaction, so per-thread connections would buy only parallel
        # reads, at the price of a connection (three open files) per thread that ever touched
        # the store and that `close` could not reach. Other processes use their own connections;
        # SQLite's file locks and the busy timeout serialize them.
        self._lock = threading.RLock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        #: Connections inherited through fork: never used or closed in the child (closing one
        #: could checkpoint or unlock on behalf of the parent), only kept from the collector.
        self._inherited: list[sqlite3.Connection] = []
        self._faults = FaultPlan.from_environment()
        # Leases as file locks beside the database: they end with their process, like the
        # disk store's (see `durable.stores.locks`; through SQLite where there is no flock).
        self._leases = machine_leases(self.path.with_name(self.path.name + ".leases"))
        #: Record writes made from a coroutine share transactions made by a committer thread.
        self.group_commit = group_commit
        self._committer: _GroupCommitter | None = None
        self._committer_lock = threading.Lock()
        with self._lock:
            self._connect()

    def __repr__(self) -> str:
        return f"SQLiteStateStore({str(self.path)!r})"

    # -- the connection -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        path = self.path
        if path.is_dir():
            raise IsADirectoryError(
                f"{path} is a directory (a DiskStateStore?); SQLiteStateStore takes the path "
                "of a database file, e.g. DiskStateStore(directory) or SQLiteStateStore("
                f"'{path / 'durable.db'}')"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Created private before SQLite opens it: pickled state is code. SQLite gives the
            # -wal and -shm files the permissions of the database file.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        connection = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit: every transaction here is explicit
            check_same_thread=False,
        )
        #: The largest record a row holds: SQLite's limit on a value (a billion bytes unless
        #: the library was built with another), less room for the row.
        self.max_record_bytes: int = connection.getlimit(sqlite3.SQLITE_LIMIT_LENGTH) - (1 << 16)
        try:
            self._open_schema(connection)
        except sqlite3.DatabaseError as error:
            connection.close()
            if not _is_damage(error):
                raise  # locked, read-only, out of disk space: not the file's fault
            if _primary_code(error) == sqlite3.SQLITE_NOTADB and not _has_sqlite_header(path):
                raise StateFormatError(
                    f"{path} is not an SQLite database, so not a durable store; it was not "
                    "changed. Point SQLiteStateStore at a new file or at a file it created"
                ) from None
            raise CorruptStateError(
                f"the SQLite store {path} cannot be read ({error}); it was not changed. "
                "Restore it from a backup, or move it away to start an empty store"
            ) from error
        except BaseException:
            connection.close()
            raise
        self._connection, self._pid = connection, os.getpid()
        return connection

    def _open_schema(self, connection: sqlite3.Connection) -> None:
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        # Read what the file is before writing anything: a foreign database stays untouched.
        if self._version(connection) != SCHEMA_VERSION:
            connection.execute("BEGIN IMMEDIATE")
            try:
                # Again under the write lock: another process may have created or migrated it.
                version = self._version(connection)
                if version == 0:
                    for statement in _SCHEMA:
                        connection.execute(statement)
                elif version != SCHEMA_VERSION:
                    self._migrate(connection, version)
                connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise
        # WAL: readers never block the writer nor see half a transaction, and a commit is one
        # append to the -wal file. synchronous=FULL fsyncs that file at every commit, so a write
        # that returned survives a power cut; NORMAL (the usual WAL pairing) would fsync only at
        # checkpoints, and the last acknowledged writes could be lost. Both are set on every
        # connection (journal_mode is stored in the file, synchronous is not).
        mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StateFormatError(
                f"the SQLite store {self.path} cannot use WAL mode (journal mode is {mode!r}); "
                "put it on a local filesystem that supports shared memory"
            )
        connection.execute("PRAGMA synchronous = FULL")

    @staticmethod
    def _migrate(connection: sqlite3.Connection, version: int) -> None:
        """Bring a store of schema `version` to this one, inside the caller's transaction (so
        a failure anywhere leaves the file at its old version, untouched)."""
        connection.create_function(_CHECKSUM_FUNCTION, 1, zlib.crc32, deterministic=True)
        while version < SCHEMA_VERSION:
            for statement in _MIGRATIONS[version]:
                connection.execute(statement)
            version += 1
            connection.execute(f"PRAGMA user_version = {version}")

    def _version(self, connection: sqlite3.Connection) -> int:
        """The schema version of a durable store (one this version reads, or migrates), 0 for
        an empty database; refuses the rest."""
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
            )
        }
        if application_id == 0 and version == 0 and not tables:
            return 0
        if application_id != APPLICATION_ID:
            raise StateFormatError(
                f"{self.path} is an SQLite database of another application, not a durable "
                "store; it was not changed. Point SQLiteStateStore at a new file or at a file "
                "it created"
            )
        if version > SCHEMA_VERSION:
            raise StateFormatError(
                f"the SQLite store {self.path} has schema version {version}, written by a newer "
                f"version of durable; this version reads schema {SCHEMA_VERSION}. Upgrade durable"
            )
        if (version != SCHEMA_VERSION and version not in _MIGRATIONS) or not _TABLES <= tables:
            raise StateFormatError(
                f"the SQLite store {self.path} has schema version {version} with tables "
                f"{sorted(tables)}; this version reads schema {SCHEMA_VERSION} with tables "
                f"{sorted(_TABLES)}. Restore it from a backup or move it away"
            )
        return version

    def _db(self) -> sqlite3.Connection:
        """The connection of this process (call with the lock held)."""
        connection = self._connection
        if connection is not None and self._pid == os.getpid():
            return connection
        if connection is not None:  # forked: the parent's connection is not ours to use
            self._inherited.append(connection)
            self._connection = None
        return self._connect()

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        committer, self._committer = self._committer, None
        if committer is not None:
            committer.stop()
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is None:
                return
            if self._pid == os.getpid():
                connection.close()
            else:
                self._inherited.append(connection)

    def acquire_lease(self, instance_id: str, owner: str) -> str | None:
        """An exclusive lock on ``<database>.leases/<instance id>.lock`` (``.lockdb`` where
        there is no flock), held until released or until this process ends."""
        return self._leases.acquire(instance_id, owner)

    def release_lease(self, instance_id: str, owner: str) -> None:
        self._leases.release(instance_id)

    def __enter__(self) -> SQLiteStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(
        self,
        instance_id: str | None,
        statements: Sequence[tuple[str, Any]],
        fault: str | None = None,
    ) -> Any:
        """Run `statements` as one transaction; the last row id of the last one.

        `fault` (from `FaultPlan.next_write`) kills the process before the transaction, between
        its statements and COMMIT (torn: never committed, so never seen), or after COMMIT.
        """
        if fault == "before":
            die()
        with self._lock:
            connection = self._db()
            connection.execute("BEGIN IMMEDIATE")
            try:
                cursor = None
                for sql, parameters in statements:
                    if isinstance(parameters, list):
                        cursor = connection.executemany(sql, parameters)
                    else:
                        cursor = connection.execute(sql, parameters)
                if fault == "torn":
                    die()
                connection.execute("COMMIT")
            except BaseException as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                if isinstance(error, sqlite3.DatabaseError):
                    self._refuse_damage(error, instance_id)
                raise
            if fault == "after":
                die()
            return cursor.lastrowid if cursor is not None else None

    def _read(
        self, instance_id: str | None, sql: str, parameters: tuple[Any, ...] | dict[str, Any] = ()
    ) -> list[Any]:
        with self._lock:
            try:
                return self._db().execute(sql, parameters).fetchall()
            except sqlite3.DatabaseError as error:
                self._refuse_damage(error, instance_id)
                raise

    def _refuse_damage(self, error: sqlite3.DatabaseError, instance_id: str | None) -> None:
        """Raise `CorruptStateError` if `error` says the database file is damaged."""
        if not _is_damage(error):
            return
        instance = f"instance {instance_id!r}: " if instance_id is not None else ""
        raise CorruptStateError(
            f"{instance}the SQLite store {self.path} is damaged ({error}); it was refused. "
            "Restore it from a backup (sqlite3's .recover may save what is intact)"
        ) from error

    # -- records --------------------------------------------------------------------------------
    def read_records(self, instance_id: str) -> list[bytes]:
        """The records of `instance_id`, each checked against its checksum and its place."""
        validate_instance_id(instance_id)
        rows = self._read(
            instance_id,
            "SELECT position, data, checksum FROM records WHERE instance_id = ? ORDER BY position",
            (instance_id,),
        )
        return checked_log(rows, lambda problem: self._refuse_row(instance_id, problem))

    def _refuse_row(self, instance_id: str, problem: str) -> None:
        raise CorruptStateError(
            f"instance {instance_id!r}: in the SQLite store {self.path}, {problem}; it was not "
            "loaded. Restore the store from a backup, or delete the instance"
        )

    def read_head(self, instance_id: str) -> bytes | None:
        """The head given with the latest record write of `instance_id` that had one."""
        validate_instance_id(instance_id)
        rows = self._read(
            instance_id, "SELECT head FROM instances WHERE instance_id = ?", (instance_id,)
        )
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def append_record(
        self,
        instance_id: str,
        record: bytes,
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> Awaitable[None] | None:
        """One transaction; with `group_commit` and called from a coroutine, a future that
        completes once the transaction holding this record (and others) has committed."""
        validate_instance_id(instance_id)
        fault = self._faults.next_write()
        data = bytes(record)
        statements = [
            (
                _APPEND_RECORD,
                {"instance_id": instance_id, "data": data, "checksum": zlib.crc32(data)},
            ),
            _touch(instance_id, summary, head),
        ]
        return self._write_or_queue(instance_id, statements, fault)

    def _write_or_queue(
        self, instance_id: str, statements: list[Any], fault: str | None
    ) -> Awaitable[None] | None:
        if self.group_commit:
            loop = running_loop()
            if loop is not None:
                # Not the connection's lock: the committer holds that through each COMMIT,
                # and the event loop must go on meanwhile.
                with self._committer_lock:
                    if self._committer is None or not self._committer.alive():
                        self._committer = _GroupCommitter(self)
                    committer = self._committer
                return committer.submit(loop, (instance_id, statements, fault))
        self._write(instance_id, statements, fault)
        return None

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> Awaitable[None] | None:
        validate_instance_id(instance_id)
        rows = []
        for position, record in enumerate(records):
            data = bytes(record)
            rows.append((instance_id, position, data, zlib.crc32(data)))
        fault = self._faults.next_write()
        statements = [
            ("DELETE FROM records WHERE instance_id = ?", (instance_id,)),
            (_INSERT_RECORD, rows),
            _touch(instance_id, summary, head),
        ]
        return self._write_or_queue(instance_id, statements, fault)

    def delete_instance(self, instance_id: str) -> None:
        validate_instance_id(instance_id)
        self._leases.forget(instance_id)
        self._write(
            instance_id,
            [
                ("DELETE FROM records WHERE instance_id = ?", (instance_id,)),
                ("DELETE FROM events WHERE instance_id = ?", (instance_id,)),
                ("DELETE FROM instances WHERE instance_id = ?", (instance_id,)),
            ],
        )

    def list_instances(self) -> list[str]:
        return sorted(
            row[0] for row in self._read(None, "SELECT DISTINCT instance_id FROM records")
        )

    # -- the index of instances: what a worker asks instead of reading them all --------------
    def due_instances(self, now: float, limit: int = 1000) -> list[str]:
        """Ids of the instances that may be able to make progress at `now` (epoch seconds),
        running ones first (a crashed runner's come before any other work), then least
        recently written first, at most `limit`: enqueued and running ones; waiting ones
        whose wake-up time has come or that have any pending event (whether it is the awaited
        one is for the caller to check: the store cannot read event names); and those whose
        summary is unknown (rows of a schema 1 file not yet run or filled in). Found through
        the ``(status, wake_at)`` index and the pending events, without reading any record."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        parameters = {"now": float(now), "limit": limit}
        return [row[0] for row in self._read(None, _DUE_INSTANCES, parameters)]

    def running_instances(self, limit: int = 1000) -> list[str]:
        """Ids of the instances whose last status is running, least recently written first,
        at most `limit`: where a worker finds those a crashed runner left, past any backlog
        of enqueued ones (a search of the status index)."""
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be an int >= 1, got {limit!r}")
        return [row[0] for row in self._read(None, _RUNNING_INSTANCES, {"limit": limit})]

    def next_wake_at(self, after: float | None = None) -> float | None:
        """The earliest wake-up time of a waiting instance (later than `after` when given),
        or None when no waiting instance has one."""
        if after is None:
            rows = self._read(None, _NEXT_WAKE_AT_ANY)
        else:
            rows = self._read(None, _NEXT_WAKE_AT, {"after": float(after)})
        return rows[0][0] if rows else None

    def summary(self, instance_id: str) -> InstanceSummary | None:
        """The indexed summary of `instance_id`; None when unknown or there is no such
        instance."""
        validate_instance_id(instance_id)
        rows = self._read(
            instance_id,
            "SELECT status, waiting_for, wake_at FROM instances WHERE instance_id = ?",
            (instance_id,),
        )
        if not rows or rows[0][0] is None:
            return None
        return InstanceSummary(*rows[0])

    def fill_summaries(self, summaries: dict[str, InstanceSummary]) -> list[str]:
        """Record summaries read from the instances' records (by a worker) for those whose
        summary is still unknown, in one transaction; returns the ids whose summary was
        unknown. An instance that a write gave a summary since it was read keeps that one
        (``WHERE status IS NULL``), so a stale read never overwrites a newer state."""
        if not summaries:
            return []
        for instance_id in summaries:
            validate_instance_id(instance_id)
        ids = sorted(summaries)
        unknown: list[str] = []
        for start in range(0, len(ids), 500):  # under SQLite's limit of bound parameters
            chunk = ids[start : start + 500]
            unknown += [
                row[0]
                for row in self._read(
                    None,
                    "SELECT instance_id FROM instances WHERE status IS NULL AND instance_id IN "
                    f"({', '.join('?' * len(chunk))})",
                    tuple(chunk),
                )
            ]
        if not unknown:  # the usual case: no write transaction at all
            return []
        rows = [
            (summaries[i].status, summaries[i].waiting_for, _wake_at(summaries[i]), i)
            for i in unknown
        ]
        self._write(
            None,
            [
                (
                    "UPDATE instances SET status = ?, waiting_for = ?, wake_at = ? "
                    "WHERE instance_id = ? AND status IS NULL",
                    rows,
                )
            ],
        )
        return sorted(unknown)

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, instance_id: str, data: bytes) -> int:
        validate_instance_id(instance_id)
        data = bytes(data)
        return self._write(
            instance_id,
            [
                (
                    "INSERT INTO events (instance_id, data, checksum) VALUES (?, ?, ?)",
                    (instance_id, data, zlib.crc32(data)),
                )
            ],
        )

    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        """The pending events of `instance_id`, each checked against its checksum."""
        validate_instance_id(instance_id)
        rows = self._read(
            instance_id,
            "SELECT event_id, data, checksum FROM events WHERE instance_id = ? ORDER BY event_id",
            (instance_id,),
        )
        events = []
        for event_id, data, checksum in rows:
            if checksum is not None and zlib.crc32(data) != checksum:
                self._refuse_row(instance_id, f"event {event_id} failed its checksum")
            events.append((event_id, bytes(data)))
        return events

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        validate_instance_id(instance_id)
        if not event_ids:
            return
        self._write(
            instance_id,
            [
                (
                    "DELETE FROM events WHERE instance_id = ? AND event_id = ?",
                    [(instance_id, event_id) for event_id in event_ids],
                )
            ],
        )


def _primary_code(error: sqlite3.DatabaseError) -> int | None:
    """The primary result code of `error` (the low byte of its extended code)."""
    code = getattr(error, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """Whether `error` says the database file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB and
    their extended codes, such as SQLITE_CORRUPT_INDEX)."""
    return _primary_code(error) in _DAMAGED


def _has_sqlite_header(path: Path) -> bool:
    """Whether the file at `path` starts as an SQLite database does. Only called once SQLite
    has found no database in the file: the descriptor opened here drops this process's
    POSIX locks on the file when closed, which no connection to a database there needs."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        return os.read(descriptor, len(_SQLITE_HEADER)) == _SQLITE_HEADER
    finally:
        os.close(descriptor)


def _wake_at(summary: InstanceSummary) -> float | None:
    return None if summary.wake_at is None else float(summary.wake_at)


def _touch(
    instance_id: str, summary: InstanceSummary | None, head: bytes | None = None
) -> tuple[str, dict[str, Any]]:
    """The statement that updates the instance's row in a record write, and its parameters."""
    if summary is None and head is None:  # a step: only the time changes
        return _TOUCH_INSTANCE_TIME, {"instance_id": instance_id, "now": time.time()}
    parameters = {
        "instance_id": instance_id,
        "now": time.time(),
        "given": summary is not None,
        "head": None if head is None else bytes(head),
        "status": None,
        "waiting_for": None,
        "wake_at": None,
    }
    if summary is not None:
        parameters["status"] = summary.status
        parameters["waiting_for"] = summary.waiting_for
        parameters["wake_at"] = _wake_at(summary)
    return _TOUCH_INSTANCE, parameters


class _GroupCommitter(GroupCommitter):
    """Commits the record writes of many coroutines in shared ``BEGIN IMMEDIATE`` …
    ``COMMIT`` transactions. A write is (instance id, statements, fault point)."""

    def __init__(self, store: SQLiteStateStore) -> None:
        self.store = store
        super().__init__()

    def commit(self, writes: list[Any]) -> list[BaseException | None]:
        faults = [fault for _, _, fault in writes]
        if all(statements[0][0] is _APPEND_RECORD for _, statements, _ in writes):
            # Appends only: all records in one executemany, then the instance rows, one
            # executemany per run of writes updating them with the same statement (the rows
            # are not read by the inserts, and each instance's records and rows keep their
            # order).
            statements = [(_APPEND_RECORD, [write[1][0][1] for write in writes])]
            for _, (_, (touch, parameters)), _ in writes:
                if statements[-1][0] is touch:
                    statements[-1][1].append(parameters)
                else:
                    statements.append((touch, [parameters]))
        else:
            statements = [statement for _, each, _ in writes for statement in each]
        fault = next((f for f in faults if f in ("before", "torn")), None) or (
            "after" if "after" in faults else None
        )
        self.store._write(writes[0][0], statements, fault)
        return [None] * len(writes)
