"""Signatures bind each record to its instance and its place, and each event to its instance:
whatever a writer to the store moves, splices, reorders, replays or cuts is refused before
anything is unpickled."""

from __future__ import annotations

import hmac

import cloudpickle
import pytest

from durable import (
    CorruptStateError,
    DurableBackend,
    InMemoryStateStore,
    InstanceBusyError,
    PauseForEventException,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.runtime import signing

KEY = b"the key of these tests"
EFFECTS: list[tuple[str, int]] = []


def charge(instance: str, n: int) -> int:
    EFFECTS.append((instance, n))
    return n * 10


@make_durable
async def three_charges_then_go(instance: str):
    total = 0
    for n in range(3):
        total += await durable_execute(charge, instance, n)
    bonus = await wait_for_event("go")
    return total + bonus


class HeadlessStore(InMemoryStateStore):
    """A store of records that keeps no heads (as a custom store may)."""

    keeps_heads = False


def backend(store, **options) -> DurableBackend:
    return DurableBackend(store, secret_key=KEY, **options)


async def paused(store, instance: str) -> None:
    with pytest.raises(PauseForEventException):
        await three_charges_then_go(
            instance, orchestration_backend=backend(store), instance_id=instance
        )


async def two_paused(store=None) -> InMemoryStateStore:
    store = store if store is not None else InMemoryStateStore()
    await paused(store, "a")
    await paused(store, "b")
    return store


def refused(store, instance: str, match: str) -> None:
    with pytest.raises(CorruptStateError, match=match):
        backend(store).load_state(instance)
    with pytest.raises(CorruptStateError, match=match):
        backend(store).read_state(instance)


async def test_a_log_moved_under_another_instance_is_refused():
    store = await two_paused()
    store.replace_records("a", store.read_records("b"))
    refused(store, "a", r"'a': record 1 of its log failed its signature check .*another instance")


async def test_a_record_of_another_instance_appended_is_refused():
    store = await two_paused()
    store.append_record("a", store.read_records("b")[-1])
    refused(store, "a", r"'a': record \d+ of its log")


async def test_records_reordered_are_refused():
    store = await two_paused()
    records = store.read_records("a")
    records[1], records[2] = records[2], records[1]
    store.replace_records("a", records)
    refused(store, "a", r"'a': record 2 of its log is record 3 of the instance's history")


async def test_an_old_record_replayed_at_the_end_is_refused():
    store = await two_paused()
    records = store.read_records("a")
    store.replace_records("a", [*records, records[1]])
    refused(store, "a", rf"record {len(records) + 1} of its log is record 2 .* where")


async def test_a_record_taken_out_of_the_middle_is_refused():
    store = await two_paused()
    records = store.read_records("a")
    store.replace_records("a", [records[0], *records[2:]])
    refused(store, "a", r"record 2 of its log is record 3 of the instance's history where 2")


async def test_a_log_whose_first_records_were_removed_is_refused():
    store = await two_paused()
    store.replace_records("a", store.read_records("a")[1:])
    refused(store, "a", r"record 1 of its log is not the start of a log")


async def test_a_log_cut_back_to_an_earlier_prefix_is_refused_by_its_head():
    store = await two_paused()
    records = store.read_records("a")
    # The head stays; only the log is cut (as a writer to the records would).
    head = store.read_head("a")
    store.replace_records("a", records[:2], head=head)
    refused(store, "a", rf"'a': its log was cut back: it ends at record 2 .* record {len(records)}")


async def test_a_head_of_another_instance_is_refused():
    store = await two_paused()
    store.replace_records("a", store.read_records("a"), head=store.read_head("b"))
    refused(store, "a", r"'a': the head of its log failed its signature check")


async def test_a_store_without_heads_still_refuses_everything_but_a_cut():
    store = await two_paused(HeadlessStore())
    records = store.read_records("a")
    store.replace_records("a", [records[0], *records[2:]])
    refused(store, "a", r"record 2 of its log is record 3")
    # A cut to a prefix is a valid history: only a head (or a backup) tells it apart.
    store.replace_records("a", records[:2])
    assert backend(store).read_state("a") is not None


async def test_an_event_moved_to_another_instance_is_refused():
    store = await two_paused()
    backend(store).publish_event("b", "go", 1)
    [(event_id, data)] = store.read_events("b")
    store.append_event("a", data)
    with pytest.raises(CorruptStateError, match=r"'a': event \d+ failed its signature .*another"):
        backend(store).pending_events("a")
    with pytest.raises(CorruptStateError, match=r"'a': event \d+ failed its signature"):
        await three_charges_then_go("a", orchestration_backend=backend(store), instance_id="a")


async def test_two_events_with_the_same_payload_are_stored_as_different_bytes():
    store = await two_paused()
    backend(store).publish_event("a", "go", 1)
    backend(store).publish_event("a", "go", 1)
    first, second = (data for _, data in store.read_events("a"))
    assert first != second


async def test_every_effect_runs_once_across_resumes_of_a_signed_chain():
    EFFECTS.clear()
    store = InMemoryStateStore()
    await paused(store, "a")
    backend(store).publish_event("a", "go", 5)
    resumed = await three_charges_then_go(
        "a", orchestration_backend=backend(store), instance_id="a"
    )
    assert resumed == 35
    assert EFFECTS == [("a", 0), ("a", 1), ("a", 2)]


async def test_the_chain_continues_across_compactions():
    store = InMemoryStateStore()
    with pytest.raises(PauseForEventException):
        await three_charges_then_go(
            "a", orchestration_backend=backend(store, compact_after=2), instance_id="a"
        )
    [first, *_] = store.read_records("a")
    _, _, seq, kind = signing._CHAINED_HEADER.unpack_from(first)
    assert kind == signing.STARTS_LOG and seq > 1
    backend(store).publish_event("a", "go", 0)
    assert await three_charges_then_go("a", orchestration_backend=backend(store), instance_id="a")


# -- the first signed format and key rotation ---------------------------------------------
def first_format(data: bytes, key: bytes = KEY) -> bytes:
    """`data` signed as the first format did: the MAC of the bytes alone."""
    return signing._LEGACY + hmac.digest(key, data, "sha256") + data


async def unsigned_then_first_format(store) -> None:
    with pytest.raises(PauseForEventException):
        await three_charges_then_go(
            "a", orchestration_backend=DurableBackend(store), instance_id="a"
        )
    store.replace_records("a", [first_format(data) for data in store.read_records("a")])


async def test_records_of_the_first_format_still_load_and_are_rewritten_chained():
    EFFECTS.clear()
    store = InMemoryStateStore()
    await unsigned_then_first_format(store)
    store.append_event("a", first_format(cloudpickle.dumps(("go", 7))))
    assert (
        await three_charges_then_go("a", orchestration_backend=backend(store), instance_id="a")
        == 37
    )
    assert EFFECTS == [("a", 0), ("a", 1), ("a", 2)]
    records = store.read_records("a")
    assert all(data.startswith(signing._CHAINED) for data in records)
    assert signing._CHAINED_HEADER.unpack_from(records[0])[3] == signing.STARTS_LOG


async def test_state_signed_under_an_earlier_key_loads_with_it_as_a_verify_key():
    store = InMemoryStateStore()
    with pytest.raises(PauseForEventException):
        await three_charges_then_go(
            "a", orchestration_backend=DurableBackend(store, secret_key=b"old"), instance_id="a"
        )
    rotated = DurableBackend(store, secret_key=KEY, verify_keys=[b"old"])
    rotated.publish_event("a", "go", 1)
    assert await three_charges_then_go("a", orchestration_backend=rotated, instance_id="a") == 31
    with pytest.raises(CorruptStateError, match="signed with another key"):
        backend(store).read_state("a")


def test_verify_keys_need_a_secret_key():
    with pytest.raises(ValueError, match="give secret_key too"):
        DurableBackend(verify_keys=[b"old"])


def test_verify_keys_are_a_sequence_of_keys():
    with pytest.raises(TypeError, match="a sequence of keys, not one key"):
        DurableBackend(secret_key=KEY, verify_keys=b"old")


async def test_compact_re_signs_a_log_under_the_current_key():
    store = InMemoryStateStore()
    with pytest.raises(PauseForEventException):
        await three_charges_then_go(
            "a", orchestration_backend=DurableBackend(store, secret_key=b"old"), instance_id="a"
        )
    assert DurableBackend(store, secret_key=KEY, verify_keys=[b"old"]).compact("a") is True
    [record] = store.read_records("a")
    new_only = backend(store)
    assert new_only.read_state("a")["status"] == "waiting"
    new_only.publish_event("a", "go", 2)
    assert await three_charges_then_go("a", orchestration_backend=new_only, instance_id="a") == 32


def test_compact_of_an_unknown_instance_is_false():
    assert backend(InMemoryStateStore()).compact("nobody") is False


async def test_compact_refuses_an_instance_another_runner_holds():
    store = await two_paused()
    runner = backend(store)
    assert runner.acquire_instance("a") is None
    with pytest.raises(InstanceBusyError, match="'a' is being run by another runner"):
        backend(store).compact("a")


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 65, b"z" * 200])
def test_the_mac_is_standard_hmac_sha256(key):
    data = b"some record bytes" * 9
    assert signing._Mac(key).digest(data) == hmac.digest(key, data, "sha256")
