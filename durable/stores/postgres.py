"""`PostgresStateStore`: every instance's record log, inbox, index and lease in one PostgreSQL
schema, shared by workers on many machines (psycopg 3, the ``durable-frames[postgres]`` extra).

The schema is made and migrated by numbered migrations (`_MIGRATIONS`), each applied once, in
a transaction that holds an advisory lock on the schema's name: workers starting at once wait
for the first to finish, then find nothing to do.

One runner per instance, across machines: a lease is a row (owner, fencing token, expiry on
the server's clock) that its holder renews while it runs (a thread, every third of the lease)
and that another runner may take once it has expired, with the next token. **Every write of
records is fenced**: it is one statement that renews its holder's lease row (owner and token
matching) and writes only if that row was there to renew, so a runner whose lease was taken
over — frozen past its expiry, cut off from the server — can no longer store anything; its
write raises `LeaseLostError` and nothing of it is kept. A record write without a lease (the
store holds none for that instance) is refused while another runner holds a live one.

Every record and event carries the CRC-32 of its bytes, checked on every read, and a log's
positions run 0, 1, 2, ... without a gap, as in the SQLite store.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .._errors import CorruptStateError, LeaseLostError, StateFormatError
from .._ids import validate_instance_id
from .base import Claim, InstanceSummary, StateStore, checked_log
from .committer import GroupCommitter, running_loop
from .faults import FaultPlan, die

#: The schema (of PostgreSQL: a namespace of tables) a store uses unless told another.
DEFAULT_SCHEMA = "durable"
#: How long a lease lasts without renewal: a runner frozen or cut off for longer loses its
#: instances to another worker (and its writes are refused from then on).
DEFAULT_LEASE_SECONDS = 30.0
#: The migrations this version knows; a schema migrated further is refused.
SCHEMA_VERSION = 2

_INSTALL = "pip install 'durable-frames[postgres]'"


#: version -> the statements that bring a schema from the version before it to this one
#: (``{s}`` is the schema, quoted). Append new ones; never change one that has shipped.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        # checksum: the CRC-32 of data. Positions run 0, 1, 2, ... per instance.
        """CREATE TABLE {s}.records (
            instance_id text NOT NULL,
            position integer NOT NULL,
            data bytea NOT NULL,
            checksum bigint NOT NULL,
            PRIMARY KEY (instance_id, position)
        )""",
        """CREATE TABLE {s}.events (
            event_id bigserial PRIMARY KEY,
            instance_id text NOT NULL,
            data bytea NOT NULL,
            checksum bigint NOT NULL
        )""",
        "CREATE INDEX events_by_instance ON {s}.events (instance_id, event_id)",
        # One row per instance with records: its summary as its last write left it (NULL
        # status: written without one) and its head, written with the records.
        """CREATE TABLE {s}.instances (
            instance_id text PRIMARY KEY,
            created_at double precision NOT NULL,
            updated_at double precision NOT NULL,
            status text,
            waiting_for text,
            wake_at double precision,
            head bytea
        )""",
        "CREATE INDEX instances_by_status ON {s}.instances (status, wake_at)",
        # fence: the fencing token, one more at every taking over; a released lease keeps
        # its row (expired) so tokens only grow.
        """CREATE TABLE {s}.leases (
            instance_id text PRIMARY KEY,
            owner text NOT NULL,
            fence bigint NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
    ),
    # Every instance has a lease row (at first an expired one, token 0): claims lock lease
    # rows only (see `_CLAIM_DUE`).
    2: (
        """INSERT INTO {s}.leases (instance_id, owner, fence, expires_at)
            SELECT instance_id, '', 0, '-infinity' FROM {s}.instances
            ON CONFLICT (instance_id) DO NOTHING""",
    ),
}

#: Which writes are let through: `_HELD` renews the lease this store holds (its row locked
#: until the write commits, so no taking over in between) and lets the write through only if
#: the row still names this holder and token; `_FREE` lets a write without a lease through
#: while no runner holds a live one.
_HELD = """UPDATE {s}.leases SET expires_at = now() + %(lease)s * interval '1 second'
    WHERE instance_id = %(instance_id)s AND owner = %(owner)s AND fence = %(fence)s
    RETURNING instance_id"""
_FREE = """SELECT %(instance_id)s::text AS instance_id WHERE NOT EXISTS (
    SELECT 1 FROM {s}.leases WHERE instance_id = %(instance_id)s AND expires_at > now())"""

#: The instance's row, written with its records (see the SQLite store's `_TOUCH_INSTANCE`).
_TOUCH = """INSERT INTO {s}.instances AS i
        (instance_id, created_at, updated_at, status, waiting_for, wake_at, head)
    SELECT %(instance_id)s, %(now)s, %(now)s, %(status)s, %(waiting_for)s, %(wake_at)s,
        %(head)s FROM allowed
    ON CONFLICT (instance_id) DO UPDATE SET updated_at = excluded.updated_at,
        status = CASE WHEN %(given)s THEN excluded.status ELSE i.status END,
        waiting_for = CASE WHEN %(given)s THEN excluded.waiting_for ELSE i.waiting_for END,
        wake_at = CASE WHEN %(given)s THEN excluded.wake_at ELSE i.wake_at END,
        head = COALESCE(excluded.head, i.head)"""

#: One statement, so one round trip and one commit: the fence, the record, the instance row.
_APPEND = """WITH allowed AS ({allowed}),
    record AS (
        INSERT INTO {s}.records (instance_id, position, data, checksum)
        SELECT %(instance_id)s, COALESCE((SELECT max(position) + 1 FROM {s}.records
            WHERE instance_id = %(instance_id)s), 0), %(data)s, %(checksum)s FROM allowed
        RETURNING 1),
    touched AS ({touch}),{lease_row}
    notified AS ({notify})
    SELECT (SELECT count(*) FROM allowed), (SELECT count(*) FROM notified)"""

#: Wakes the workers listening (`watch`) when the write leaves the instance due at once (a
#: new start: enqueued); the notification is sent when the write commits, never before.
_NOTIFY = """SELECT pg_notify(%(channel)s, 'due') FROM allowed
    WHERE %(status)s::text = 'enqueued'"""

#: A compaction: the old log goes (with the fence), then the new one comes with the row.
#: A write without a lease gives a new instance its lease row (no runner holds a live one,
#: or the write is refused); a write under the lease has one already.
_LEASE_ROW = """
    lease_row AS (INSERT INTO {s}.leases (instance_id, owner, fence, expires_at)
        SELECT instance_id, '', 0, '-infinity' FROM allowed
        ON CONFLICT (instance_id) DO NOTHING),"""

_DELETE_LOG = """WITH allowed AS ({allowed}),
    gone AS (DELETE FROM {s}.records WHERE instance_id IN (SELECT instance_id FROM allowed))
    SELECT count(*) FROM allowed"""
#: Let through on the terms of the `_DELETE_LOG` before it in the transaction (which holds
#: the lease row locked): the lease still names the holder, or no live lease exists.
_STILL_HELD = """SELECT instance_id FROM {s}.leases
    WHERE instance_id = %(instance_id)s AND owner = %(owner)s AND fence = %(fence)s"""
_WRITE_LOG = """WITH allowed AS ({allowed}),
    record AS (
        INSERT INTO {s}.records (instance_id, position, data, checksum)
        SELECT %(instance_id)s, r.position, r.data, r.checksum FROM allowed,
            unnest(%(positions)s::integer[], %(datas)s::bytea[], %(checksums)s::bigint[])
            AS r (position, data, checksum)),
    touched AS ({touch}),{lease_row}
    notified AS ({notify})
    SELECT (SELECT count(*) FROM allowed), (SELECT count(*) FROM notified)"""

_ACQUIRE = """INSERT INTO {s}.leases AS l (instance_id, owner, fence, expires_at)
    VALUES (%(instance_id)s, %(owner)s, 1, now() + %(lease)s * interval '1 second')
    ON CONFLICT (instance_id) DO UPDATE SET owner = excluded.owner, fence = l.fence + 1,
        expires_at = excluded.expires_at
    WHERE l.expires_at <= now()
    RETURNING fence"""
_HOLDER = """SELECT owner, extract(epoch FROM expires_at - now()) FROM {s}.leases
    WHERE instance_id = %(instance_id)s AND expires_at > now()"""
#: Giving a lease back wakes the listening workers when the instance is due without it: one
#: just started (its starter held the lease while its notification went out), a run that
#: stopped midway, or an event that came while the lease was held.
_RELEASE = """WITH released AS (UPDATE {s}.leases SET expires_at = '-infinity'
        WHERE instance_id = %(instance_id)s AND owner = %(owner)s AND fence = %(fence)s
        RETURNING instance_id)
    SELECT pg_notify(%(channel)s, 'released') FROM released
        JOIN {s}.instances AS i ON i.instance_id = released.instance_id
    WHERE i.status IN ('enqueued', 'running') OR (i.status IN ('waiting', 'sleeping')
        AND (i.wake_at <= extract(epoch FROM now())
            OR EXISTS (SELECT 1 FROM {s}.events AS e WHERE e.instance_id = i.instance_id)))"""
#: Renewing never waits on a lock: a lease row locked is being renewed by a write of its own
#: holder (or looked at by a claim, which leaves it), and is renewed next time otherwise.
#: Waiting could deadlock with this process's group commit, which locks the same rows in
#: another order. A released lease (``-infinity``) is not renewed: the renewer's copy of the
#: leases held may predate the release.
_RENEW = """UPDATE {s}.leases AS l SET expires_at = now() + %(lease)s * interval '1 second'
    FROM (SELECT r.instance_id FROM {s}.leases AS r
            JOIN unnest(%(ids)s::text[], %(owners)s::text[], %(fences)s::bigint[])
                AS h (id, owner, fence)
            ON r.instance_id = h.id AND r.owner = h.owner AND r.fence = h.fence
        WHERE r.expires_at <> '-infinity'
        FOR UPDATE OF r SKIP LOCKED) AS held
    WHERE l.instance_id = held.instance_id
    RETURNING l.instance_id"""

#: Claiming a batch of due instances, in one statement. Each kind of due instance is found by
#: its own index scan, which locks the lease rows it returns with ``FOR UPDATE SKIP LOCKED``:
#: workers claiming at the same moment take different instances, and a claim never waits on
#: a lock (it locks lease rows only, which every write locks first, so it cannot deadlock
#: with one). A row locked after another claim took it is checked again (``expires_at``) and
#: dropped. An instance given in ``skip`` with its mark is left out until it is written again
#: or has a newer event; with a NULL mark, left out whatever happens.
_CLAIMABLE = """l.expires_at <= now()
        AND NOT EXISTS (SELECT 1 FROM unnest(%(skip_ids)s::text[],
                %(skip_updated)s::double precision[], %(skip_events)s::bigint[])
                AS k (id, updated, event)
            WHERE k.id = i.instance_id AND (k.updated IS NULL OR (k.updated = i.updated_at
                AND NOT EXISTS (SELECT 1 FROM {s}.events AS e
                    WHERE e.instance_id = i.instance_id AND e.event_id > k.event))))"""
_CLAIM_DUE = """WITH
    started AS (SELECT i.instance_id, i.updated_at, i.status <> 'running' AS later
        FROM {s}.instances AS i JOIN {s}.leases AS l ON l.instance_id = i.instance_id
        WHERE i.status IN ('enqueued', 'running') AND {claimable}
        ORDER BY 3, 2, 1 LIMIT %(limit)s FOR UPDATE OF l SKIP LOCKED),
    timed_out AS (SELECT i.instance_id, i.updated_at, true AS later
        FROM {s}.instances AS i JOIN {s}.leases AS l ON l.instance_id = i.instance_id
        WHERE i.status IN ('waiting', 'sleeping') AND i.wake_at <= %(now)s AND {claimable}
        ORDER BY 2, 1 LIMIT %(limit)s FOR UPDATE OF l SKIP LOCKED),
    unknown AS (SELECT i.instance_id, i.updated_at, true AS later
        FROM {s}.instances AS i JOIN {s}.leases AS l ON l.instance_id = i.instance_id
        WHERE i.status IS NULL AND {claimable}
        ORDER BY 2, 1 LIMIT %(limit)s FOR UPDATE OF l SKIP LOCKED),
    with_events AS (SELECT i.instance_id, i.updated_at, true AS later
        FROM {s}.instances AS i JOIN {s}.leases AS l ON l.instance_id = i.instance_id
        WHERE i.status IN ('waiting', 'sleeping')
            AND i.instance_id IN (SELECT instance_id FROM {s}.events) AND {claimable}
        ORDER BY 2, 1 LIMIT %(limit)s FOR UPDATE OF l SKIP LOCKED),
    due AS (SELECT * FROM started UNION SELECT * FROM timed_out UNION SELECT * FROM unknown
        UNION SELECT * FROM with_events ORDER BY 3, 2, 1 LIMIT %(limit)s),
    taken AS (UPDATE {s}.leases AS l SET owner = %(owner)s, fence = l.fence + 1,
            expires_at = now() + %(lease)s * interval '1 second'
        FROM due WHERE l.instance_id = due.instance_id
        RETURNING l.instance_id, l.fence)
    SELECT t.instance_id, t.fence, d.updated_at,
        (SELECT COALESCE(max(e.event_id), 0) FROM {s}.events AS e
            WHERE e.instance_id = t.instance_id)
    FROM taken AS t JOIN due AS d ON d.instance_id = t.instance_id
    ORDER BY d.later, d.updated_at, d.instance_id""".replace("{claimable}", _CLAIMABLE)

# The instances that can make progress: as the SQLite store's `_DUE_INSTANCES`.
_DUE_INSTANCES = """
    SELECT instance_id, updated_at, status <> 'running' FROM {s}.instances
        WHERE status IN ('enqueued', 'running')
    UNION
    SELECT instance_id, updated_at, true FROM {s}.instances
        WHERE status IN ('waiting', 'sleeping') AND wake_at <= %(now)s
    UNION
    SELECT instance_id, updated_at, true FROM {s}.instances WHERE status IS NULL
    UNION
    SELECT i.instance_id, i.updated_at, true
        FROM (SELECT DISTINCT instance_id FROM {s}.events) AS e
        JOIN {s}.instances AS i ON i.instance_id = e.instance_id
        WHERE i.status IN ('waiting', 'sleeping')
    ORDER BY 3, 2, 1
    LIMIT %(limit)s"""


class PostgresStateStore(StateStore):
    """Records, events, the index of instances and their leases in the PostgreSQL schema
    `schema` of the database `dsn` names (a ``postgresql://`` URL or a conninfo string).

    Connections come from a pool of at most `pool_size`. A record write made from a
    coroutine is committed by a thread of the store, in one transaction with the writes
    other coroutines made meanwhile (one round trip and one commit for all of them), and
    returns a future that completes after that COMMIT; elsewhere a write is one statement.
    `lease_seconds` is how long a lease outlives its holder's last renewal.
    """

    keeps_heads = True
    #: The largest record a row holds: PostgreSQL's limit on a bytea value (1 GB), less room
    #: for the statement around it.
    max_record_bytes = (1 << 30) - (1 << 20)

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        group_commit: bool = True,
    ) -> None:
        try:
            import psycopg
            import psycopg.conninfo
            from psycopg import sql
        except ImportError:
            raise ImportError(
                f"PostgresStateStore needs psycopg 3 and psycopg_pool: {_INSTALL}"
            ) from None
        if not isinstance(schema, str) or not schema or len(schema) > 63:
            raise ValueError(
                f"schema must be a PostgreSQL name (1 to 63 characters), got {schema!r}"
            )
        if not (isinstance(lease_seconds, int | float) and lease_seconds > 0):
            raise ValueError(f"lease_seconds must be a number > 0, got {lease_seconds!r}")
        if not (isinstance(pool_size, int) and pool_size >= 1):
            raise ValueError(f"pool_size must be an int >= 1, got {pool_size!r}")
        try:
            psycopg.conninfo.conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as error:
            raise ValueError(
                f"{_shown_dsn(dsn)} is not a PostgreSQL URL or conninfo string "
                f"({str(error).strip()}); write postgresql://user:password@host:5432/database"
            ) from None
        self.dsn: str = dsn
        self.schema: str = schema
        self.lease_seconds: float = float(lease_seconds)
        self.pool_size: int = pool_size
        self.connect_timeout: float = connect_timeout
        self.group_commit = group_commit
        self._psycopg = psycopg
        quoted = sql.Identifier(schema).as_string(None)
        self._sql = {
            name: statement.replace("{s}", quoted) for name, statement in _statements().items()
        }
        self._quoted_schema = quoted
        #: Where writes that make an instance due (a start, an event) notify (`watch`).
        self.channel: str = f"durable:{schema}"[:63]
        self._faults = FaultPlan.from_environment()
        self._lock = threading.Lock()
        self._pool: Any = None
        self._pid = 0
        #: Pools inherited through fork: never used or closed in the child.
        self._inherited: list[Any] = []
        #: instance id -> (owner, fencing token) of the leases this store object holds.
        self._held: dict[str, tuple[str, int]] = {}
        #: Leases of `_held` taken by `claim_due` that no run has taken over yet.
        self._claimed: set[str] = set()
        self._renewer: _LeaseRenewer | None = None
        self._committer: _GroupCommitter | None = None
        self._migrate()

    def __repr__(self) -> str:
        return f"PostgresStateStore({_shown_dsn(self.dsn)!r}, schema={self.schema!r})"

    # -- connections ----------------------------------------------------------------------------
    def _connect(self):
        """A new connection outside the pool (autocommit), or a clear error naming the
        server and what to check."""
        psycopg = self._psycopg
        try:
            return psycopg.connect(
                self.dsn,
                autocommit=True,
                connect_timeout=max(1, round(self.connect_timeout)),
                prepare_threshold=0,
            )
        except psycopg.OperationalError as error:
            raise ConnectionError(
                f"cannot connect to the PostgreSQL store {_shown_dsn(self.dsn)}: "
                f"{str(error).strip()}. Check that the server runs and the URL's host, port, "
                "user, password and database are right"
            ) from None

    def _pooled(self):
        """The connection pool of this process (made on first use, and again after fork)."""
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                return self._pool
            if self._pool is not None:
                self._inherited.append(self._pool)
                self._held.clear()  # the parent's leases are the parent's
                self._claimed.clear()
                self._renewer = self._committer = None
            from psycopg_pool import ConnectionPool

            self._pool = ConnectionPool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                kwargs={"autocommit": True, "prepare_threshold": 0},
                timeout=self.connect_timeout,
                name=f"durable {self.schema}",
                open=True,
            )
            self._pid = os.getpid()
            return self._pool

    @contextlib.contextmanager
    def _connection(self, instance_id: str | None = None):
        psycopg = self._psycopg
        pool = self._pooled()
        try:
            with pool.connection() as connection:
                yield connection
        except psycopg.OperationalError:
            # The server restarted, or a connection was cut: the pool drops this connection;
            # the others idle in it may be dead too, so it tests them now (not at every use).
            with contextlib.suppress(Exception):
                pool.check()
            raise
        except psycopg.errors.DataCorrupted as error:
            instance = f"instance {instance_id!r}: " if instance_id is not None else ""
            raise CorruptStateError(
                f"{instance}the PostgreSQL store {_shown_dsn(self.dsn)} reports damaged data "
                f"({error}); restore it from a backup"
            ) from error

    def _query(self, instance_id: str | None, name: str, parameters: Any) -> list[tuple[Any, ...]]:
        """The rows of the read statement `name`. A read that meets a connection the server
        dropped (a restart, a cut) is made once more on a fresh one: it changes nothing, so
        running it again is safe (writes are not retried here: the runtime resumes the
        instance from its last write)."""
        for attempt in (1, 2):
            try:
                with self._connection(instance_id) as connection:
                    return connection.execute(self._sql[name], parameters).fetchall()
            except self._psycopg.OperationalError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Give back the leases held, stop the store's threads and close its connections."""
        for instance_id, (owner, _) in list(self._held.items()):
            with contextlib.suppress(Exception):
                self.release_lease(instance_id, owner)
        renewer, committer = self._renewer, self._committer
        self._renewer = self._committer = None
        for thread in (renewer, committer):
            if thread is not None:
                thread.stop()
        with self._lock:
            pool, self._pool = self._pool, None
            if pool is not None and self._pid == os.getpid():
                pool.close()

    def __enter__(self) -> PostgresStateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the schema -----------------------------------------------------------------------------
    def _migrate(self) -> None:
        """Bring the schema to `SCHEMA_VERSION` (creating it if need be), under an advisory
        lock so that stores opening at once apply each migration once; a schema of a newer
        version, or one holding tables of another application, is refused untouched."""
        s = self._quoted_schema
        with self._connect() as connection:
            if self._version(connection) == SCHEMA_VERSION:
                return  # the usual case: nothing to lock
            with connection.transaction():
                connection.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('durable schema ' || %s))",
                    (self.schema,),
                )
                version = self._version(connection)
                if version is None:
                    connection.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
                    connection.execute(
                        f"CREATE TABLE {s}.migrations (version integer PRIMARY KEY, "
                        "applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    version = 0
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[number]:
                        connection.execute(statement.replace("{s}", s))
                    connection.execute(
                        f"INSERT INTO {s}.migrations (version) VALUES (%s)", (number,)
                    )

    def _version(self, connection) -> int | None:
        """The schema's migration number; None when there is no schema or it is empty."""
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.schema,),
            )
        }
        if not tables:
            return None
        if "migrations" not in tables:
            raise StateFormatError(
                f"the PostgreSQL schema {self.schema!r} of {_shown_dsn(self.dsn)} holds tables of "
                f"another application ({', '.join(sorted(tables))}); it was not changed. Give "
                "PostgresStateStore a schema of its own (schema=..., or ?schema=... in the URL)"
            )
        version = (
            connection.execute(
                f"SELECT max(version) FROM {self._quoted_schema}.migrations"
            ).fetchone()[0]
            or 0
        )
        if version > SCHEMA_VERSION:
            raise StateFormatError(
                f"the PostgreSQL schema {self.schema!r} of {_shown_dsn(self.dsn)} is at migration "
                f"{version}, made by a newer version of durable; this version knows migrations "
                f"up to {SCHEMA_VERSION}. Upgrade durable"
            )
        return version

    # -- leases ---------------------------------------------------------------------------------
    def acquire_lease(self, instance_id: str, owner: str) -> str | None:
        """Take the lease of `instance_id` when no live one is held (a fencing token one
        more than the last); None when taken, else who holds it and for how long."""
        validate_instance_id(instance_id)
        holder = f"{owner}, process {os.getpid()}"
        if instance_id in self._claimed:
            if self._held[instance_id][0] == holder:
                self._claimed.discard(instance_id)  # the claim becomes the run's lease
                return None
            return "a claim of another owner through the same store object"
        if instance_id in self._held:
            return "another run through the same store object"
        parameters = {"instance_id": instance_id, "owner": holder, "lease": self.lease_seconds}
        for _ in range(3):  # a lease released between the two statements: try again
            with self._connection(instance_id) as connection:
                taken = connection.execute(self._sql["acquire"], parameters).fetchone()
                if taken is not None:
                    self._held[instance_id] = (holder, taken[0])
                    self._renewing()
                    return None
                row = connection.execute(self._sql["holder"], parameters).fetchone()
            if row is not None:
                return f"{row[0]}, whose lease runs {float(row[1]):.0f} s more unless renewed"
        return "another runner (its lease changed hands while being asked)"

    def claim_due(
        self,
        now: float,
        limit: int,
        owner: str,
        *,
        skip: dict[str, tuple[Any, ...] | None] | None = None,
    ) -> list[Claim]:
        """Take, in one statement, the leases of at most `limit` instances that can make
        progress at `now` (those `due_instances` lists, but for those a live lease holds),
        running ones first, then the least recently written; workers claiming at once take
        different ones (``FOR UPDATE SKIP LOCKED``). Each lease is held by `owner` as if
        `acquire_lease` had taken it — the run's own ``acquire_lease`` takes it over — and is
        given back with `release_lease` when the instance is not run after all. `skip` maps
        ids to leave out to the mark a claim of theirs returned (left out until written
        again or sent a newer event), or to None (left out whatever happens)."""
        _check_limit(limit)
        skip = skip or {}
        holder = f"{owner}, process {os.getpid()}"
        marks = list(skip.items())
        parameters = {
            "now": float(now),
            "limit": limit,
            "owner": holder,
            "lease": self.lease_seconds,
            "skip_ids": [instance_id for instance_id, _ in marks],
            "skip_updated": [None if mark is None else mark[0] for _, mark in marks],
            "skip_events": [None if mark is None else mark[1] for _, mark in marks],
        }
        with self._connection() as connection:
            rows = connection.execute(self._sql["claim_due"], parameters).fetchall()
        claims = []
        for instance_id, fence, updated_at, newest_event in rows:
            self._held[instance_id] = (holder, fence)
            self._claimed.add(instance_id)
            claims.append(Claim(instance_id, (updated_at, newest_event)))
        if claims:
            self._renewing()
        return claims

    def release_lease(self, instance_id: str, owner: str) -> None:
        self._claimed.discard(instance_id)
        held = self._held.pop(instance_id, None)
        if held is None:
            return
        holder, fence = held
        parameters = {
            "instance_id": instance_id,
            "owner": holder,
            "fence": fence,
            "channel": self.channel,
        }
        with self._connection(instance_id) as connection:
            connection.execute(self._sql["release"], parameters)

    def fencing_token(self, instance_id: str) -> int | None:
        """The fencing token of the lease this store object holds on `instance_id`."""
        held = self._held.get(instance_id)
        return None if held is None else held[1]

    def _renewing(self) -> None:
        if self._renewer is None or not self._renewer.alive():
            self._renewer = _LeaseRenewer(self)

    def _renew(self) -> None:
        """Renew every lease held. One taken over meanwhile stays held here until its runner
        releases it, so that its writes keep being fenced (and refused), never let through
        as writes without a lease once the new holder has released it."""
        held = dict(self._held)
        if not held:
            return
        parameters = {
            "ids": list(held),
            "owners": [owner for owner, _ in held.values()],
            "fences": [fence for _, fence in held.values()],
            "lease": self.lease_seconds,
        }
        with self._connection() as connection:
            connection.execute(self._sql["renew"], parameters)

    def _fence(self, instance_id: str) -> tuple[str, dict[str, Any]]:
        """Which `allowed` clause a write of `instance_id` takes, and its parameters."""
        held = self._held.get(instance_id)
        if held is None:
            return "free", {"instance_id": instance_id}
        owner, fence = held
        return "held", {
            "instance_id": instance_id,
            "owner": owner,
            "fence": fence,
            "lease": self.lease_seconds,
        }

    def _lost(self, instance_id: str, fence_kind: str) -> LeaseLostError:
        held = self._held.get(instance_id)
        with self._connection(instance_id) as connection:
            row = connection.execute(self._sql["holder"], {"instance_id": instance_id}).fetchone()
        now_held = f"{row[0]} holds it now" if row is not None else "no runner holds it now"
        if fence_kind == "free":
            return LeaseLostError(
                f"instance {instance_id!r}: a write without its lease was refused because "
                f"another runner holds the lease ({now_held}); nothing was stored"
            )
        return LeaseLostError(
            f"instance {instance_id!r}: the write was refused because this runner's lease "
            f"(fencing token {held[1] if held else '?'}) was taken over — it was paused or cut "
            f"off longer than the lease ({self.lease_seconds:g} s) — and {now_held}; nothing "
            "of the write was stored, and the instance goes on from its last stored write"
        )

    # -- notifications ------------------------------------------------------------------------
    def watch(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from a thread of the store) whenever a process commits a write
        that makes an instance due at once: a start, or an event published. A worker
        watches so that new work wakes it at once instead of at its next poll; it still
        polls, so a notification lost while the connection was down costs one poll. Returns
        the function that stops watching."""
        listener = _Listener(self, callback)
        return listener.stop

    # -- records --------------------------------------------------------------------------------
    def read_records(self, instance_id: str) -> list[bytes]:
        """The records of `instance_id`, each checked against its checksum and its place."""
        validate_instance_id(instance_id)
        rows = self._query(instance_id, "read_records", (instance_id,))
        return checked_log(rows, lambda problem: self._refuse_row(instance_id, problem))

    def _refuse_row(self, instance_id: str, problem: str) -> None:
        raise CorruptStateError(
            f"instance {instance_id!r}: in the PostgreSQL store {_shown_dsn(self.dsn)} (schema "
            f"{self.schema!r}), {problem}; it was not loaded. Restore the store from a backup, "
            "or delete the instance"
        )

    def read_head(self, instance_id: str) -> bytes | None:
        validate_instance_id(instance_id)
        rows = self._query(instance_id, "read_head", (instance_id,))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def append_record(
        self,
        instance_id: str,
        record: bytes,
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> Awaitable[None] | None:
        """One fenced statement; from a coroutine (with `group_commit`), a future that
        completes once the transaction holding it has committed."""
        validate_instance_id(instance_id)
        kind, parameters = self._fence(instance_id)
        data = bytes(record)
        parameters.update(
            _touch(instance_id, summary, head),
            data=data,
            checksum=zlib.crc32(data),
            channel=self.channel,
        )
        write = _Write(instance_id, kind, [(self._sql[f"append_{kind}"], parameters)])
        return self._write_or_queue(write)

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
        *,
        head: bytes | None = None,
    ) -> Awaitable[None] | None:
        validate_instance_id(instance_id)
        kind, parameters = self._fence(instance_id)
        datas = [bytes(record) for record in records]
        log = {
            **parameters,
            **_touch(instance_id, summary, head),
            "channel": self.channel,
            "positions": list(range(len(datas))),
            "datas": datas,
            "checksums": [zlib.crc32(data) for data in datas],
        }
        write = _Write(
            instance_id,
            kind,
            [(self._sql[f"delete_log_{kind}"], parameters), (self._sql[f"write_log_{kind}"], log)],
        )
        return self._write_or_queue(write)

    def _write_or_queue(self, write: _Write) -> Awaitable[None] | None:
        write.fault = self._faults.next_write()
        if self.group_commit:
            loop = running_loop()
            if loop is not None:
                self._pooled()  # after a fork, a committer of this process's own
                with self._lock:
                    if self._committer is None or not self._committer.alive():
                        self._committer = _GroupCommitter(self)
                    committer = self._committer
                return committer.submit(loop, write)
        refused = self._commit([write])
        if refused:
            raise self._lost(write.instance_id, write.kind)
        return None

    def _commit(self, writes: list[_Write]) -> list[_Write]:
        """Run `writes` in one transaction, in one round trip (pipelined: BEGIN, the
        statements, COMMIT, then one sync); the writes the fence refused (they stored
        nothing; the others are committed)."""
        faults = [write.fault for write in writes]
        if "before" in faults:
            die()
        with self._connection(writes[0].instance_id) as connection:
            if len(writes) == 1 and len(writes[0].statements) == 1 and faults == [None]:
                # One statement in autocommit is its own transaction.
                answer = connection.execute(*writes[0].statements[0]).fetchone()[0]
                return [] if answer else list(writes)
            with connection.pipeline() as pipeline:
                connection.execute("BEGIN")
                answers = [
                    (write, [connection.execute(*statement) for statement in write.statements])
                    for write in writes
                ]
                if "torn" in faults:
                    pipeline.sync()
                    die()
                connection.execute("COMMIT")
        if "after" in faults:
            die()
        return [write for write, cursors in answers if not cursors[0].fetchone()[0]]

    def delete_instance(self, instance_id: str) -> None:
        """Forget `instance_id` — records, events, its row and its lease — fenced as a write
        is: under this store's lease, or while no runner holds a live one."""
        validate_instance_id(instance_id)
        kind, parameters = self._fence(instance_id)
        s = self._quoted_schema
        with self._connection(instance_id) as connection, connection.transaction():
            allowed = connection.execute(self._sql[f"may_delete_{kind}"], parameters).fetchone()
            if allowed is not None:
                for table in ("records", "events", "instances", "leases"):
                    connection.execute(
                        f"DELETE FROM {s}.{table} WHERE instance_id = %s", (instance_id,)
                    )
        if allowed is None:
            raise self._lost(instance_id, kind)

    def list_instances(self) -> list[str]:
        return [row[0] for row in self._query(None, "list", ())]

    # -- the index of instances ---------------------------------------------------------------
    def due_instances(self, now: float, limit: int = 1000) -> list[str]:
        """As `SQLiteStateStore.due_instances`: the instances that may make progress at `now`,
        running ones first, then least recently written, at most `limit`."""
        _check_limit(limit)
        rows = self._query(None, "due", {"now": float(now), "limit": limit})
        return [row[0] for row in rows]

    def running_instances(self, limit: int = 1000) -> list[str]:
        _check_limit(limit)
        return [row[0] for row in self._query(None, "running", (limit,))]

    def next_wake_at(self, after: float | None = None) -> float | None:
        rows = self._query(None, "next_wake", (float("-inf") if after is None else float(after),))
        return rows[0][0] if rows else None

    def summary(self, instance_id: str) -> InstanceSummary | None:
        validate_instance_id(instance_id)
        rows = self._query(instance_id, "summary", (instance_id,))
        if not rows or rows[0][0] is None:
            return None
        return InstanceSummary(*rows[0])

    def fill_summaries(self, summaries: dict[str, InstanceSummary]) -> list[str]:
        """Set the summaries of those of `summaries` whose summary is still unknown (a write
        since they were read keeps its own); the ids that were unknown."""
        if not summaries:
            return []
        for instance_id in summaries:
            validate_instance_id(instance_id)
        ids = sorted(summaries)
        parameters = {
            "ids": ids,
            "statuses": [summaries[i].status for i in ids],
            "waiting": [summaries[i].waiting_for for i in ids],
            "wakes": [_wake_at(summaries[i]) for i in ids],
        }
        with self._connection() as connection:
            return sorted(row[0] for row in connection.execute(self._sql["fill"], parameters))

    # -- events ---------------------------------------------------------------------------------
    def append_event(self, instance_id: str, data: bytes) -> int:
        validate_instance_id(instance_id)
        data = bytes(data)
        with self._connection(instance_id) as connection:
            return connection.execute(
                self._sql["append_event"], (instance_id, data, zlib.crc32(data), self.channel)
            ).fetchone()[0]

    def read_events(self, instance_id: str) -> list[tuple[int, bytes]]:
        """The pending events of `instance_id`, each checked against its checksum."""
        validate_instance_id(instance_id)
        rows = self._query(instance_id, "read_events", (instance_id,))
        events = []
        for event_id, data, checksum in rows:
            if zlib.crc32(data) != checksum:
                self._refuse_row(instance_id, f"event {event_id} failed its checksum")
            events.append((event_id, bytes(data)))
        return events

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        validate_instance_id(instance_id)
        if not event_ids:
            return
        with self._connection(instance_id) as connection:
            connection.execute(self._sql["delete_events"], (instance_id, list(event_ids)))


def schema_missing(dsn: str, schema: str) -> str | None:
    """ "the schema 'S' of DSN" when the database `dsn` names has no store in `schema`; None
    when it has one, or when the server cannot be asked (opening the store says why)."""
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as connection:
            found = connection.execute(
                "SELECT 1 FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = 'migrations'",
                (schema,),
            ).fetchone()
    except Exception:
        return None
    return None if found else f"the schema {schema!r} of {_shown_dsn(dsn)}"


class _Write:
    """One store write: its statements (the first answers whether the fence let it
    through), which fence it takes, and its fault point."""

    __slots__ = ("instance_id", "kind", "statements", "fault")

    def __init__(self, instance_id: str, kind: str, statements: list[Any]) -> None:
        self.instance_id, self.kind, self.statements = instance_id, kind, statements
        self.fault: str | None = None


def _statements() -> dict[str, str]:
    """Every statement of the store, with ``{s}`` for the quoted schema."""
    statements = {}
    for kind, allowed in (("held", _HELD), ("free", _FREE)):
        lease_row = _LEASE_ROW if kind == "free" else ""
        statements[f"append_{kind}"] = _APPEND.format(
            allowed=allowed, touch=_TOUCH, lease_row=lease_row, notify=_NOTIFY, s="{s}"
        )
        statements[f"delete_log_{kind}"] = _DELETE_LOG.format(allowed=allowed, s="{s}")
        statements[f"write_log_{kind}"] = _WRITE_LOG.format(
            allowed=_STILL_HELD if kind == "held" else _FREE,
            touch=_TOUCH,
            lease_row=lease_row,
            notify=_NOTIFY,
            s="{s}",
        )
    statements.update(
        # The lease row locked until the deletion commits: no one takes it over meanwhile.
        may_delete_held=_STILL_HELD + " FOR UPDATE",
        may_delete_free=_FREE,
        acquire=_ACQUIRE,
        claim_due=_CLAIM_DUE,
        holder=_HOLDER,
        release=_RELEASE,
        renew=_RENEW,
        due=_DUE_INSTANCES,
        read_records=(
            "SELECT position, data, checksum FROM {s}.records WHERE instance_id = %s "
            "ORDER BY position"
        ),
        read_head="SELECT head FROM {s}.instances WHERE instance_id = %s",
        list="SELECT instance_id FROM {s}.instances ORDER BY instance_id",
        running=(
            "SELECT instance_id FROM {s}.instances WHERE status = 'running' "
            "ORDER BY updated_at, instance_id LIMIT %s"
        ),
        next_wake=(
            "SELECT min(wake_at) FROM {s}.instances WHERE status IN ('waiting', 'sleeping') "
            "AND wake_at > %s"
        ),
        summary="SELECT status, waiting_for, wake_at FROM {s}.instances WHERE instance_id = %s",
        fill=(
            "UPDATE {s}.instances AS i SET status = f.status, waiting_for = f.waiting, "
            "wake_at = f.wake FROM unnest(%(ids)s::text[], %(statuses)s::text[], "
            "%(waiting)s::text[], %(wakes)s::double precision[]) AS f (id, status, waiting, wake) "
            "WHERE i.instance_id = f.id AND i.status IS NULL RETURNING i.instance_id"
        ),
        # The listening workers are told of the event when it commits.
        append_event=(
            "WITH event AS (INSERT INTO {s}.events (instance_id, data, checksum) "
            "VALUES (%s, %s, %s) RETURNING event_id) "
            "SELECT event_id, pg_notify(%s, 'event') FROM event"
        ),
        read_events=(
            "SELECT event_id, data, checksum FROM {s}.events WHERE instance_id = %s "
            "ORDER BY event_id"
        ),
        delete_events="DELETE FROM {s}.events WHERE instance_id = %s AND event_id = ANY(%s)",
    )
    return statements


def _check_limit(limit: Any) -> None:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be an int >= 1, got {limit!r}")


def _wake_at(summary: InstanceSummary) -> float | None:
    return None if summary.wake_at is None else float(summary.wake_at)


def _touch(instance_id: str, summary: InstanceSummary | None, head: bytes | None) -> dict[str, Any]:
    """The parameters of `_TOUCH`."""
    parameters: dict[str, Any] = {
        "instance_id": instance_id,
        "now": time.time(),
        "given": summary is not None,
        "head": None if head is None else bytes(head),
        "status": None,
        "waiting_for": None,
        "wake_at": None,
    }
    if summary is not None:
        parameters.update(
            status=summary.status, waiting_for=summary.waiting_for, wake_at=_wake_at(summary)
        )
    return parameters


def _shown_dsn(dsn: str) -> str:
    """`dsn` without its password, to show in messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "<a connection string that cannot be parsed>"
    if "password" in parts:
        parts["password"] = "***"
    return make_conninfo(**{key: str(value) for key, value in parts.items()})


class _Listener:
    """A thread that LISTENs on the store's channel on a connection of its own and calls
    back at each notification; it connects again after a lost connection."""

    def __init__(self, store: PostgresStateStore, callback: Callable[[], None]) -> None:
        self.store, self.callback = store, callback
        self.stopped = threading.Event()
        self.listening = threading.Event()
        self.thread = threading.Thread(target=self._run, name="durable-listener", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        from psycopg import sql

        while not self.stopped.is_set():
            try:
                with self.store._connect() as connection:
                    connection.execute(
                        sql.SQL("LISTEN {}").format(sql.Identifier(self.store.channel))
                    )
                    self.listening.set()
                    while not self.stopped.is_set():
                        for _ in connection.notifies(timeout=0.5, stop_after=1):
                            self.callback()
            except Exception:
                self.listening.clear()
                self.stopped.wait(1.0)  # the server away: try again in a moment


class _LeaseRenewer:
    """A thread renewing the store's leases every third of `lease_seconds`."""

    def __init__(self, store: PostgresStateStore) -> None:
        self.store = store
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="durable-lease-renewer", daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive() and not self.stopped.is_set()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        pid = os.getpid()
        while not self.stopped.wait(self.store.lease_seconds / 3):
            if os.getpid() != pid:
                return
            with contextlib.suppress(Exception):  # the server away for a moment: next time
                self.store._renew()


class _GroupCommitter(GroupCommitter):
    """Commits the record writes of many coroutines in shared transactions, pipelined (one
    round trip for all of them); a write the fence refused fails alone."""

    name = "durable-pg-commit"

    def __init__(self, store: PostgresStateStore) -> None:
        self.store = store
        super().__init__()

    def commit(self, writes: list[_Write]) -> list[BaseException | None]:
        refused = {id(write) for write in self.store._commit(writes)}
        outcomes: list[BaseException | None] = []
        for write in writes:
            if id(write) not in refused:
                outcomes.append(None)
                continue
            try:
                outcomes.append(self.store._lost(write.instance_id, write.kind))
            except Exception as error:  # the server gone while asked who holds it now
                outcomes.append(error)
        return outcomes
