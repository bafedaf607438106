"""`PostgresStateStore` beyond the common contract: its schema and migrations, leases with
fencing tokens that fence every write, group commit, damage, URLs and connection errors —
against the real server the tests start."""

from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections.abc import Callable

import psycopg
import pytest

from durable import (
    CorruptStateError,
    DurableBackend,
    LeaseLostError,
    PostgresStateStore,
    StateFormatError,
    durable_execute,
    make_durable,
)
from durable.stores import postgres
from durable.stores.base import InstanceSummary
from durable.stores.url import store_from_url


@pytest.fixture
def open_store(postgres_dsn, postgres_schema):
    """Opens stores on the test's schema (short leases) and closes them after the test."""
    opened: list[PostgresStateStore] = []

    def open_one(**options) -> PostgresStateStore:
        options.setdefault("lease_seconds", 0.5)
        store = PostgresStateStore(postgres_dsn, schema=postgres_schema, **options)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


def sql(dsn: str, statement: str, parameters=()) -> list:
    with psycopg.connect(dsn, autocommit=True) as connection:
        cursor = connection.execute(statement, parameters)
        return cursor.fetchall() if cursor.description else []


# -- the schema --------------------------------------------------------------------------------
def test_a_new_store_creates_its_schema_at_the_current_migration(open_store, postgres_dsn):
    store = open_store()
    rows = sql(postgres_dsn, f'SELECT version FROM "{store.schema}".migrations ORDER BY 1')
    assert rows == [(version,) for version in range(1, postgres.SCHEMA_VERSION + 1)]


def test_a_schema_of_the_first_migration_is_brought_up_to_date_keeping_its_instances(
    postgres_dsn, postgres_schema
):
    """A schema made by the first release (its instances without lease rows) gains them, so
    its instances can be claimed."""
    s = f'"{postgres_schema}"'
    sql(postgres_dsn, f"CREATE SCHEMA {s}")
    sql(postgres_dsn, f"CREATE TABLE {s}.migrations (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())")  # fmt: skip
    for statement in postgres._MIGRATIONS[1]:
        sql(postgres_dsn, statement.replace("{s}", s))
    sql(postgres_dsn, f"INSERT INTO {s}.migrations (version) VALUES (1)")
    sql(postgres_dsn, f"INSERT INTO {s}.instances VALUES ('order-7', 1, 1, 'enqueued', NULL, "
        "NULL, NULL)")  # fmt: skip
    sql(postgres_dsn, f"INSERT INTO {s}.records VALUES ('order-7', 0, 'state', "
        f"{zlib.crc32(b'state')})")  # fmt: skip
    store = PostgresStateStore(postgres_dsn, schema=postgres_schema)
    try:
        assert store.read_records("order-7") == [b"state"]
        assert [claim.instance_id for claim in store.claim_due(time.time(), 10, "a")] == ["order-7"]
    finally:
        store.close()


def test_stores_opening_a_new_schema_at_once_migrate_it_once(postgres_dsn, postgres_schema):
    opened, errors = [], []

    def open_one() -> None:
        try:
            opened.append(PostgresStateStore(postgres_dsn, schema=postgres_schema))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in opened:
        store.close()
    assert errors == [] and len(opened) == 6
    rows = sql(postgres_dsn, f'SELECT version FROM "{postgres_schema}".migrations ORDER BY 1')
    assert rows == [(version,) for version in range(1, postgres.SCHEMA_VERSION + 1)]


def test_a_schema_migrated_by_a_newer_version_is_refused(open_store, postgres_dsn):
    store = open_store()
    sql(postgres_dsn, f'INSERT INTO "{store.schema}".migrations (version) VALUES (99)')
    with pytest.raises(StateFormatError, match="migration 99.*Upgrade durable"):
        open_store()


def test_a_schema_holding_another_applications_tables_is_refused_untouched(
    postgres_dsn, postgres_schema
):
    sql(postgres_dsn, f'CREATE SCHEMA "{postgres_schema}"')
    sql(postgres_dsn, f'CREATE TABLE "{postgres_schema}".records (id int)')
    with pytest.raises(StateFormatError, match="another application.*records"):
        PostgresStateStore(postgres_dsn, schema=postgres_schema)
    tables = sql(
        postgres_dsn,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        (postgres_schema,),
    )
    assert tables == [("records",)]


def test_schemas_keep_their_instances_apart(postgres_dsn, postgres_schema):
    first = PostgresStateStore(postgres_dsn, schema=postgres_schema)
    second = PostgresStateStore(postgres_dsn, schema=postgres_schema + "_other")
    try:
        first.append_record("order-7", b"first")
        assert second.read_records("order-7") == [] and second.list_instances() == []
    finally:
        first.close()
        second.close()


# -- leases and fencing ------------------------------------------------------------------------
def test_a_held_lease_names_its_holder_and_how_long_it_runs(open_store):
    runner, other = open_store(lease_seconds=30), open_store(lease_seconds=30)
    assert runner.acquire_lease("order-7", "runner a") is None
    holder = other.acquire_lease("order-7", "runner b")
    assert holder.startswith("runner a, process ") and "lease runs 30 s more" in holder


def test_an_expired_lease_is_taken_over_with_the_next_fencing_token(open_store):
    runner, other = open_store(), open_store()
    runner.acquire_lease("order-7", "runner a")
    runner._renewer.stop()  # the runner freezes: nothing renews its lease
    time.sleep(0.7)
    assert other.acquire_lease("order-7", "runner b") is None
    assert (runner.fencing_token("order-7"), other.fencing_token("order-7")) == (1, 2)


def test_a_renewed_lease_outlives_its_length(open_store):
    runner, other = open_store(), open_store()
    runner.acquire_lease("order-7", "runner a")
    time.sleep(1.2)  # more than twice the lease: renewed every third of it
    assert other.acquire_lease("order-7", "runner b") is not None


def test_a_write_after_the_lease_was_taken_over_is_refused_and_stores_nothing(open_store):
    runner, other = open_store(), open_store()
    runner.acquire_lease("order-7", "runner a")
    runner.append_record("order-7", b"step 1")
    runner._renewer.stop()
    time.sleep(0.7)
    other.acquire_lease("order-7", "runner b")
    with pytest.raises(LeaseLostError, match="'order-7'.*fencing token 1.*was taken over"):
        runner.append_record("order-7", b"stale step 2", InstanceSummary("completed"))
    with pytest.raises(LeaseLostError):
        runner.replace_records("order-7", [b"stale compaction"])
    assert other.read_records("order-7") == [b"step 1"]
    assert other.summary("order-7") is None  # the stale write's summary was not stored


def test_a_stale_runner_stays_fenced_after_the_new_holder_releases(open_store):
    runner, other = open_store(), open_store()
    runner.acquire_lease("order-7", "runner a")
    runner._renewer.stop()
    time.sleep(0.7)
    other.acquire_lease("order-7", "runner b")
    other.append_record("order-7", b"done by b")
    other.release_lease("order-7", "runner b")
    with pytest.raises(LeaseLostError):
        runner.append_record("order-7", b"stale")
    assert other.read_records("order-7") == [b"done by b"]


def test_a_write_without_a_lease_is_refused_while_another_runner_holds_one(open_store):
    runner, bystander = open_store(lease_seconds=30), open_store()
    runner.acquire_lease("order-7", "runner a")
    with pytest.raises(LeaseLostError, match="without its lease"):
        bystander.append_record("order-7", b"intruder")
    runner.release_lease("order-7", "runner a")
    bystander.append_record("order-7", b"after the runner")
    assert bystander.read_records("order-7") == [b"after the runner"]


def test_a_released_lease_is_taken_at_once(open_store):
    runner, other = open_store(lease_seconds=30), open_store(lease_seconds=30)
    runner.acquire_lease("order-7", "runner a")
    runner.release_lease("order-7", "runner a")
    assert other.acquire_lease("order-7", "runner b") is None
    assert other.fencing_token("order-7") == 2


def test_a_renewal_racing_a_release_does_not_take_the_lease_again(open_store):
    # The renewer thread copies the leases held, then renews them: a release in between
    # must stay a release (a revived lease kept every other runner out for its length, after
    # `durable edit` had exited).
    runner, other = open_store(lease_seconds=30), open_store(lease_seconds=30)
    runner.acquire_lease("order-7", "runner a")
    copied_by_the_renewer = dict(runner._held)
    runner.release_lease("order-7", "runner a")
    runner._held.update(copied_by_the_renewer)
    runner._renew()
    runner._held.clear()
    assert other.acquire_lease("order-7", "runner b") is None


# -- claiming due instances -------------------------------------------------------------------
def saved(store: PostgresStateStore, instance_id: str, status: str, **summary) -> None:
    store.append_record(instance_id, b"state", InstanceSummary(status, **summary))


def test_a_claim_takes_the_due_instances_running_ones_first_and_leaves_the_others(open_store):
    store = open_store(lease_seconds=30)
    saved(store, "enqueued-1", "enqueued")
    saved(store, "orphan", "running")  # its runner died: no live lease
    saved(store, "idle", "waiting", waiting_for="approval")
    saved(store, "timed-out", "waiting", waiting_for="approval", wake_at=time.time() - 1)
    saved(store, "sleeper", "sleeping", wake_at=time.time() + 3600)
    saved(store, "done", "completed")
    saved(store, "with-event", "waiting", waiting_for="approval")
    store.append_event("with-event", b"approval")
    claims = store.claim_due(time.time(), 10, "worker a")
    assert [claim.instance_id for claim in claims] == [
        "orphan",
        "enqueued-1",
        "timed-out",
        "with-event",
    ]
    assert store.claim_due(time.time(), 10, "worker a") == []  # each is held now


def test_a_claim_takes_no_more_than_its_limit(open_store):
    store = open_store(lease_seconds=30)
    for number in range(5):
        saved(store, f"order-{number}", "enqueued")
    assert [c.instance_id for c in store.claim_due(time.time(), 2, "worker a")] == [
        "order-0",
        "order-1",
    ]


def test_a_claim_leaves_out_an_instance_another_runner_holds(open_store):
    worker, runner = open_store(lease_seconds=30), open_store(lease_seconds=30)
    saved(worker, "order-7", "running")
    runner.acquire_lease("order-7", "runner b")
    assert worker.claim_due(time.time(), 10, "worker a") == []
    runner.release_lease("order-7", "runner b")
    assert [c.instance_id for c in worker.claim_due(time.time(), 10, "worker a")] == ["order-7"]


def test_workers_claiming_at_once_never_take_the_same_instance(open_store):
    stores = [open_store(lease_seconds=30) for _ in range(4)]
    for number in range(120):
        saved(stores[0], f"order-{number:03}", "enqueued")
    taken: list[list[str]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claim_all(index: int) -> None:
        barrier.wait()
        while claims := stores[index].claim_due(time.time(), 7, f"worker {index}"):
            taken[index].extend(claim.instance_id for claim in claims)

    threads = [threading.Thread(target=claim_all, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [instance_id for ids in taken for instance_id in ids]
    assert sorted(every) == [f"order-{number:03}" for number in range(120)]
    assert sum(1 for ids in taken if ids) >= 2  # shared out, not taken by one in turn


def test_a_claimed_lease_becomes_the_lease_of_its_owners_run(open_store):
    worker, other = open_store(), open_store()
    saved(worker, "order-7", "enqueued")
    [claim] = worker.claim_due(time.time(), 10, "worker a")
    assert other.acquire_lease("order-7", "worker b") is not None
    assert worker.acquire_lease("order-7", "worker b") is not None  # not its owner's
    assert worker.acquire_lease("order-7", "worker a") is None  # the run takes the claim over
    assert worker.acquire_lease("order-7", "worker a") is not None  # once
    time.sleep(1.2)  # more than twice the lease: the claim was renewed
    worker.append_record("order-7", b"step 1", InstanceSummary("running"))
    assert worker.fencing_token("order-7") == 1


def test_a_claim_given_back_is_claimed_again_by_the_next_worker(open_store):
    worker, other = open_store(lease_seconds=30), open_store(lease_seconds=30)
    saved(worker, "order-7", "enqueued")
    worker.claim_due(time.time(), 10, "worker a")
    worker.release_lease("order-7", "worker a")
    [claim] = other.claim_due(time.time(), 10, "worker b")
    assert claim.instance_id == "order-7" and other.fencing_token("order-7") == 2


def test_a_skipped_instance_is_left_out_until_it_is_written_or_sent_a_newer_event(open_store):
    store = open_store(lease_seconds=30)
    saved(store, "order-7", "waiting", waiting_for="approval")
    store.append_event("order-7", b"another event")
    [claim] = store.claim_due(time.time(), 10, "worker a")
    store.release_lease("order-7", "worker a")
    skip = {"order-7": claim.mark}
    assert store.claim_due(time.time(), 10, "worker a", skip=skip) == []
    store.append_event("order-7", b"approval")
    [claim] = store.claim_due(time.time(), 10, "worker a", skip=skip)
    store.release_lease("order-7", "worker a")
    skip = {"order-7": claim.mark}
    assert store.claim_due(time.time(), 10, "worker a", skip=skip) == []
    saved(store, "order-7", "enqueued")
    assert len(store.claim_due(time.time(), 10, "worker a", skip=skip)) == 1


def test_an_instance_skipped_without_a_mark_is_left_out_whatever_happens(open_store):
    store = open_store(lease_seconds=30)
    saved(store, "order-7", "enqueued")
    assert store.claim_due(time.time(), 10, "worker a", skip={"order-7": None}) == []
    saved(store, "order-7", "enqueued")
    assert store.claim_due(time.time(), 10, "worker a", skip={"order-7": None}) == []


def returns_while_a_lease_row_is_locked(dsn: str, schema: str, instance_id: str, call):
    """What `call()` returns while another transaction holds the lease row of `instance_id`
    locked (as a group commit writing it does); AssertionError if it waits for the lock."""
    with psycopg.connect(dsn) as blocker:
        blocker.execute(
            f'SELECT 1 FROM "{schema}".leases WHERE instance_id = %s FOR UPDATE', (instance_id,)
        )
        answer: list = []
        thread = threading.Thread(target=lambda: answer.append(call()), daemon=True)
        thread.start()
        thread.join(timeout=10)
        waited = thread.is_alive()
        blocker.rollback()
        thread.join()
    assert not waited, "it waited for the locked lease row"
    return answer[0]


def test_a_claim_passes_over_a_lease_row_another_transaction_holds_without_waiting(
    open_store, postgres_dsn
):
    store = open_store(lease_seconds=30)
    saved(store, "order-1", "enqueued")
    saved(store, "order-2", "enqueued")
    claims = returns_while_a_lease_row_is_locked(
        postgres_dsn, store.schema, "order-1", lambda: store.claim_due(time.time(), 10, "a")
    )
    assert [claim.instance_id for claim in claims] == ["order-2"]


def test_renewing_leases_passes_over_a_row_being_written_without_waiting(open_store, postgres_dsn):
    """The renewer waiting on a row its own group commit holds deadlocked with it (the two
    lock the same rows in different orders)."""
    store = open_store(lease_seconds=30)
    for instance_id in ("order-1", "order-2"):
        store.acquire_lease(instance_id, "runner a")
    returns_while_a_lease_row_is_locked(postgres_dsn, store.schema, "order-1", store._renew)
    holder = open_store().acquire_lease("order-2", "runner b")
    assert holder is not None and "runner a" in holder


# -- group commit ------------------------------------------------------------------------------
async def test_writes_of_many_coroutines_commit_and_keep_each_instances_order(open_store):
    store = open_store()

    async def instance(number: int) -> None:
        for step in range(5):
            await store.append_record(f"order-{number}", f"{number}:{step}".encode())

    await asyncio.gather(*(instance(n) for n in range(20)))
    for number in range(20):
        expected = [f"{number}:{step}".encode() for step in range(5)]
        assert store.read_records(f"order-{number}") == expected


async def test_a_fenced_out_write_fails_alone_in_its_group(open_store):
    runner, other = open_store(), open_store()
    runner.acquire_lease("stale", "runner a")
    runner._renewer.stop()
    await asyncio.sleep(0.7)
    other.acquire_lease("stale", "runner b")
    results = await asyncio.gather(
        runner.append_record("stale", b"refused"),
        *(runner.append_record(f"fine-{n}", b"kept") for n in range(5)),
        return_exceptions=True,
    )
    assert isinstance(results[0], LeaseLostError) and results[1:] == [None] * 5
    assert runner.read_records("stale") == []
    assert all(runner.read_records(f"fine-{n}") == [b"kept"] for n in range(5))


# -- damage ------------------------------------------------------------------------------------
def test_a_record_that_fails_its_checksum_is_refused(open_store, postgres_dsn):
    store = open_store()
    store.append_record("order-7", b"paid 10")
    sql(
        postgres_dsn,
        f"UPDATE \"{store.schema}\".records SET data = 'paid 99' WHERE instance_id = 'order-7'",
    )
    with pytest.raises(CorruptStateError, match="'order-7'.*position 0.*checksum"):
        store.read_records("order-7")


def test_a_record_missing_from_the_middle_of_a_log_is_refused(open_store, postgres_dsn):
    store = open_store()
    for number in range(3):
        store.append_record("order-7", f"step {number}".encode())
    sql(postgres_dsn, f'DELETE FROM "{store.schema}".records WHERE position = 1')
    with pytest.raises(CorruptStateError, match="record 2 of its log is at position 2"):
        store.read_records("order-7")


def test_an_event_that_fails_its_checksum_is_refused(open_store, postgres_dsn):
    store = open_store()
    store.append_event("order-7", b"approve")
    sql(postgres_dsn, f"UPDATE \"{store.schema}\".events SET data = 'reject'")
    with pytest.raises(CorruptStateError, match="event 1 failed its checksum"):
        store.read_events("order-7")


# -- URLs and connections ----------------------------------------------------------------------
def test_a_postgresql_url_opens_the_store_on_its_schema(postgres_url, postgres_schema):
    store = store_from_url(postgres_url + "&lease_seconds=7")
    try:
        assert isinstance(store, PostgresStateStore)
        assert (store.schema, store.lease_seconds) == (postgres_schema, 7.0)
        store.append_record("order-7", b"one")
        assert store.read_records("order-7") == [b"one"]
    finally:
        store.close()


def test_a_server_that_does_not_answer_is_a_clear_error_without_the_password():
    with pytest.raises(ConnectionError) as refused:
        PostgresStateStore("postgresql://ada:s3cret@127.0.0.1:1/app", connect_timeout=2)
    message = str(refused.value)
    assert "cannot connect to the PostgreSQL store" in message and "127.0.0.1" in message
    assert "s3cret" not in message


def test_a_malformed_url_is_refused_saying_the_expected_form():
    with pytest.raises(ValueError, match="postgresql://user:password@host:5432/database"):
        PostgresStateStore("host=localhost port")


def test_a_bad_schema_name_is_refused():
    with pytest.raises(ValueError, match="schema must be a PostgreSQL name"):
        PostgresStateStore("postgresql://localhost/app", schema="")


def test_a_command_refuses_a_schema_that_holds_no_store_without_creating_it(
    postgres_url, postgres_dsn, postgres_schema, capsys
):
    from durable.cli import EXIT_NOT_FOUND, main

    assert main(["status", "--store", postgres_url, "order-7"]) == EXIT_NOT_FOUND
    error = capsys.readouterr().err
    assert f"the schema {postgres_schema!r} of " in error and "does not exist" in error
    found = sql(postgres_dsn, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (postgres_schema,))
    assert found == []


# -- notifications -----------------------------------------------------------------------------
def test_watchers_hear_of_starts_and_events_once_committed_and_of_nothing_else(open_store):
    store, writer = open_store(), open_store()
    heard, stop = watching(store)
    try:
        writer.append_record("order-7", b"started", InstanceSummary("enqueued"))
        assert heard.acquire(timeout=2)
        writer.append_event("order-7", b"approve")
        assert heard.acquire(timeout=2)
        writer.append_record("order-7", b"step", InstanceSummary("running"))
        writer.replace_records("order-7", [b"compacted"], InstanceSummary("waiting", "pay"))
        assert not heard.acquire(timeout=0.5)
    finally:
        stop()


def test_watchers_hear_of_a_lease_given_back_on_an_instance_due_without_it(open_store):
    """A start's notification goes out while its starter still holds the lease (a worker
    woken by it finds nothing to claim): giving the lease back announces the instance again;
    a lease given back on a finished or idle instance announces nothing."""
    store, starter = open_store(), open_store(lease_seconds=30)
    heard, stop = watching(store)
    try:
        starter.acquire_lease("order-7", "starter")
        starter.append_record("order-7", b"started", InstanceSummary("enqueued"))
        assert heard.acquire(timeout=2)
        starter.release_lease("order-7", "starter")
        assert heard.acquire(timeout=2)
        starter.acquire_lease("order-7", "runner")
        starter.append_record("order-7", b"waits", InstanceSummary("waiting", "approval"))
        starter.release_lease("order-7", "runner")
        starter.acquire_lease("order-8", "runner")
        starter.append_record("order-8", b"done", InstanceSummary("completed"))
        starter.release_lease("order-8", "runner")
        assert not heard.acquire(timeout=0.5)
    finally:
        stop()


def watching(store: PostgresStateStore) -> tuple[threading.Semaphore, Callable[[], None]]:
    """A semaphore released at each notification `store` hears, once it listens, and the
    function that stops watching."""
    heard = threading.Semaphore(0)
    stop = store.watch(heard.release)
    deadline = time.monotonic() + 5
    while not store_listening(store) and time.monotonic() < deadline:
        time.sleep(0.01)
    return heard, stop


def store_listening(store: PostgresStateStore) -> bool:
    rows = sql(
        store.dsn,
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'LISTEN %%'",
    )
    return rows[0][0] > 0


# -- signed state ------------------------------------------------------------------------------
def add_one(n: int) -> int:
    return n + 1


@make_durable
async def three_steps() -> int:
    total = 0
    for n in range(3):
        total += await durable_execute(add_one, n)
    return total


async def signed_instance(store: PostgresStateStore, instance_id: str) -> DurableBackend:
    backend = DurableBackend(store, secret_key=b"a key", compact_after=100)
    assert await three_steps(orchestration_backend=backend, instance_id=instance_id) == 6
    return backend


async def test_a_signed_instance_keeps_its_head_with_its_records(open_store):
    store = open_store()
    await signed_instance(store, "order-7")
    assert store.read_head("order-7") is not None
    again = DurableBackend(open_store(), secret_key=b"a key")
    assert again.read_state("order-7")["status"] == "completed"


async def test_a_signed_log_cut_back_behind_its_head_is_refused(open_store, postgres_dsn):
    store = open_store()
    await signed_instance(store, "order-7")
    sql(
        postgres_dsn,
        f'DELETE FROM "{store.schema}".records WHERE position = '
        f'(SELECT max(position) FROM "{store.schema}".records)',
    )
    with pytest.raises(CorruptStateError, match="order-7"):
        DurableBackend(open_store(), secret_key=b"a key").read_state("order-7")


async def test_a_signed_record_moved_to_another_instance_is_refused(open_store, postgres_dsn):
    store = open_store()
    await signed_instance(store, "order-7")
    await signed_instance(store, "order-8")
    sql(
        postgres_dsn,
        f'UPDATE "{store.schema}".records AS r SET data = o.data, checksum = o.checksum FROM "{store.schema}".records'
        " AS o WHERE r.instance_id = 'order-8' AND o.instance_id = 'order-7' "
        "AND r.position = o.position",
    )
    with pytest.raises(CorruptStateError, match="order-8"):
        DurableBackend(open_store(), secret_key=b"a key").read_state("order-8")


def test_deleting_an_instance_under_its_lease_forgets_the_lease_too(open_store, postgres_dsn):
    store = open_store(lease_seconds=30)
    store.acquire_lease("order-7", "runner a")
    store.append_record("order-7", b"one")
    store.delete_instance("order-7")
    store.release_lease("order-7", "runner a")
    assert sql(postgres_dsn, f'SELECT * FROM "{store.schema}".leases') == []
    assert store.read_records("order-7") == [] and store.list_instances() == []


def test_an_instance_a_runner_holds_cannot_be_deleted_from_outside_its_lease(open_store):
    runner, bystander = open_store(lease_seconds=30), open_store()
    runner.acquire_lease("order-7", "runner a")
    runner.append_record("order-7", b"one")
    with pytest.raises(LeaseLostError, match="without its lease"):
        bystander.delete_instance("order-7")
    assert runner.read_records("order-7") == [b"one"]
