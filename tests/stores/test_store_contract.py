"""The `StateStore` contract, checked against every store that ships with the package."""

from __future__ import annotations

import pytest

from durable import DiskStateStore, InMemoryStateStore, PostgresStateStore, SQLiteStateStore


@pytest.fixture(params=["memory", "disk", "sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "memory":
        yield InMemoryStateStore()
    elif request.param == "disk":
        yield DiskStateStore(tmp_path / "store")
    else:
        if request.param == "sqlite":
            store = SQLiteStateStore(tmp_path / "store.db")
        else:
            dsn = request.getfixturevalue("postgres_dsn")
            store = PostgresStateStore(dsn, schema=request.getfixturevalue("postgres_schema"))
        yield store
        store.close()


# -- records ----------------------------------------------------------------------------------
def test_reading_an_unknown_instance_returns_no_records(store):
    assert store.read_records("never-written") == []


def test_an_appended_record_reads_back_byte_for_byte(store):
    record = bytes(range(256)) * 4
    store.append_record("order-7", record)
    assert store.read_records("order-7") == [record]


def test_records_read_back_in_append_order(store):
    records = [f"record {n}".encode() * (n + 1) for n in range(30)]
    for record in records:
        store.append_record("order-7", record)
    assert store.read_records("order-7") == records


def test_an_empty_record_reads_back_empty(store):
    store.append_record("order-7", b"")
    store.append_record("order-7", b"")
    assert store.read_records("order-7") == [b"", b""]


def test_replace_records_replaces_the_whole_log(store):
    for n in range(5):
        store.append_record("order-7", f"old {n}".encode())
    store.replace_records("order-7", [b"compacted", b"and one more"])
    assert store.read_records("order-7") == [b"compacted", b"and one more"]


def test_appending_after_a_replace_extends_the_replaced_log(store):
    store.append_record("order-7", b"old")
    store.replace_records("order-7", [b"compacted"])
    store.append_record("order-7", b"next")
    assert store.read_records("order-7") == [b"compacted", b"next"]


def test_replace_records_creates_an_unknown_instance(store):
    store.replace_records("order-7", [b"first"])
    assert store.read_records("order-7") == [b"first"]
    assert store.list_instances() == ["order-7"]


def test_delete_instance_forgets_the_records(store):
    store.append_record("order-7", b"record")
    store.delete_instance("order-7")
    assert store.read_records("order-7") == []


def test_delete_instance_forgets_the_pending_events(store):
    store.append_record("order-7", b"record")
    store.append_event("order-7", b"event")
    store.delete_instance("order-7")
    assert store.read_events("order-7") == []


def test_delete_instance_of_an_unknown_instance_is_harmless(store):
    store.delete_instance("never-written")
    assert store.read_records("never-written") == []


def test_delete_instance_leaves_other_instances_alone(store):
    store.append_record("order-7", b"seven")
    store.append_record("order-8", b"eight")
    store.delete_instance("order-7")
    assert store.read_records("order-8") == [b"eight"]


def test_list_instances_names_every_instance_with_a_record(store):
    for instance_id in ("order-8", "order-7", "order-9"):
        store.append_record(instance_id, b"record")
    assert store.list_instances() == ["order-7", "order-8", "order-9"]


def test_list_instances_of_an_empty_store_is_empty(store):
    assert store.list_instances() == []


def test_list_instances_leaves_out_deleted_instances(store):
    store.append_record("order-7", b"record")
    store.append_record("order-8", b"record")
    store.delete_instance("order-7")
    assert store.list_instances() == ["order-8"]


def test_list_instances_leaves_out_instances_that_only_have_events(store):
    store.append_event("order-7", b"event")
    assert store.list_instances() == []


# -- heads ------------------------------------------------------------------------------------
def test_every_store_of_the_package_keeps_heads(store):
    assert store.keeps_heads is True


def test_an_unknown_instance_has_no_head(store):
    assert store.read_head("never-written") is None


def test_records_written_without_a_head_leave_the_instance_without_one(store):
    store.append_record("order-7", b"record")
    store.replace_records("order-8", [b"record"])
    assert store.read_head("order-7") is None
    assert store.read_head("order-8") is None


def test_a_head_given_with_an_append_reads_back_byte_for_byte(store):
    head = bytes(range(256))
    store.append_record("order-7", b"record", None, head=head)
    assert store.read_head("order-7") == head


def test_a_head_given_with_replace_records_reads_back(store):
    store.append_record("order-7", b"old", head=b"head of the old log")
    store.replace_records("order-7", [b"compacted"], head=b"head of the compacted log")
    assert store.read_head("order-7") == b"head of the compacted log"


def test_the_next_write_with_a_head_replaces_the_head(store):
    for n in range(5):
        store.append_record("order-7", f"record {n}".encode(), head=f"head {n}".encode())
    assert store.read_head("order-7") == b"head 4"


def test_a_write_without_a_head_leaves_the_head_as_it_was(store):
    store.append_record("order-7", b"one", head=b"head of one")
    store.append_record("order-7", b"two")
    store.replace_records("order-7", [b"one", b"two"])
    assert store.read_head("order-7") == b"head of one"


def test_delete_instance_forgets_the_head(store):
    store.append_record("order-7", b"record", head=b"head")
    store.delete_instance("order-7")
    assert store.read_head("order-7") is None


def test_a_deleted_instance_written_again_has_only_its_new_head(store):
    store.append_record("order-7", b"record", head=b"old head")
    store.delete_instance("order-7")
    store.append_record("order-7", b"record")
    assert store.read_head("order-7") is None
    store.append_record("order-7", b"another", head=b"new head")
    assert store.read_head("order-7") == b"new head"


def test_heads_of_two_instances_are_kept_apart(store):
    store.append_record("order-7", b"record", head=b"head of seven")
    store.append_record("order-8", b"record", head=b"head of eight")
    assert store.read_head("order-7") == b"head of seven"
    assert store.read_head("order-8") == b"head of eight"


def test_heads_do_not_change_the_records(store):
    store.append_record("order-7", b"one", head=b"head")
    store.replace_records("order-8", [b"a", b"b"], head=b"head")
    assert store.read_records("order-7") == [b"one"]
    assert store.read_records("order-8") == [b"a", b"b"]
    assert store.list_instances() == ["order-7", "order-8"]


# -- events -----------------------------------------------------------------------------------
def test_append_event_returns_growing_ids(store):
    ids = [store.append_event("order-7", f"event {n}".encode()) for n in range(20)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_event_ids_keep_growing_after_earlier_events_are_deleted(store):
    first = store.append_event("order-7", b"first")
    store.delete_events("order-7", [first])
    second = store.append_event("order-7", b"second")
    assert second > first


def test_read_events_returns_events_oldest_first(store):
    payloads = [f"event {n}".encode() for n in range(20)]
    ids = [store.append_event("order-7", payload) for payload in payloads]
    assert store.read_events("order-7") == list(zip(ids, payloads, strict=True))


def test_read_events_of_an_instance_without_events_is_empty(store):
    assert store.read_events("order-7") == []


def test_delete_events_removes_only_the_given_ids(store):
    ids = [store.append_event("order-7", f"event {n}".encode()) for n in range(4)]
    store.delete_events("order-7", [ids[0], ids[2]])
    assert store.read_events("order-7") == [(ids[1], b"event 1"), (ids[3], b"event 3")]


def test_delete_events_ignores_ids_already_gone(store):
    kept = store.append_event("order-7", b"kept")
    gone = store.append_event("order-7", b"gone")
    store.delete_events("order-7", [gone])
    store.delete_events("order-7", [gone, gone + 10_000])
    assert store.read_events("order-7") == [(kept, b"kept")]


def test_delete_events_of_an_instance_without_events_is_harmless(store):
    store.delete_events("order-7", [1, 2, 3])
    assert store.read_events("order-7") == []


def test_events_of_two_instances_are_kept_apart(store):
    seven = store.append_event("order-7", b"for seven")
    eight = store.append_event("order-8", b"for eight")
    assert store.read_events("order-7") == [(seven, b"for seven")]
    assert store.read_events("order-8") == [(eight, b"for eight")]


def test_deleting_events_of_one_instance_leaves_the_other_instance_alone(store):
    seven = store.append_event("order-7", b"for seven")
    eight = store.append_event("order-8", b"for eight")
    store.delete_events("order-7", [seven, eight])
    assert store.read_events("order-8") == [(eight, b"for eight")]


def test_events_do_not_change_the_record(store):
    store.append_record("order-7", b"record")
    event = store.append_event("order-7", b"event")
    store.delete_events("order-7", [event])
    assert store.read_records("order-7") == [b"record"]
