"""Signed state: with a secret key, nothing is unpickled that does not carry its HMAC."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import cloudpickle
import pytest

from durable import (
    CorruptStateError,
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    PauseForEventException,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.runtime import backend as backend_module
from durable.runtime import signing

KEY = b"a secret key for the tests"
RAN: list[str] = []


def double(n):
    return n * 2


@make_durable
async def doubled_after_go(n):
    doubled = await durable_execute(double, n)
    extra = await wait_for_event("go")
    return doubled + extra


def signed(store, key=KEY) -> DurableBackend:
    return DurableBackend(store, secret_key=key)


async def paused(store, key=KEY) -> None:
    with pytest.raises(PauseForEventException):
        await doubled_after_go(4, orchestration_backend=signed(store, key), instance_id="s1")


class RunsWhenUnpickled:
    """A payload whose unpickling runs code: what a signature keeps out."""

    def __reduce__(self):
        return RAN.append, ("unpickled",)


async def test_signed_state_resumes_with_the_same_key():
    store = InMemoryStateStore()
    await paused(store)
    signed(store).publish_event("s1", "go", 1)
    assert await doubled_after_go(4, orchestration_backend=signed(store), instance_id="s1") == 9


async def test_signed_records_and_events_are_not_plain_pickles():
    store = InMemoryStateStore()
    await paused(store)
    signed(store).publish_event("s1", "go", 1)
    records, events = store.read_records("s1"), [data for _, data in store.read_events("s1")]
    assert records and all(data.startswith(signing._CHAINED) for data in records)
    assert events and all(data.startswith(signing._BOUND_EVENT) for data in events)


async def test_an_altered_record_is_refused_before_it_is_unpickled():
    store = InMemoryStateStore()
    await paused(store)
    records = store.read_records("s1")
    payload = pickle.dumps((backend_module.RECORD_FORMAT, {"set": {"x": RunsWhenUnpickled()}}))
    header = records[-1][: signing._CHAINED_HEADER.size]
    store.replace_records("s1", [*records[:-1], header + payload])
    RAN.clear()
    with pytest.raises(CorruptStateError, match=r"'s1': record 3 of its log failed its signature"):
        signed(store).load_state("s1")
    assert RAN == []


async def test_state_signed_with_another_key_is_refused():
    store = InMemoryStateStore()
    await paused(store)
    with pytest.raises(CorruptStateError, match="signed with another key"):
        await doubled_after_go(4, orchestration_backend=signed(store, b"other"), instance_id="s1")


async def test_unsigned_state_is_refused_by_a_backend_with_a_key():
    store = InMemoryStateStore()
    with pytest.raises(PauseForEventException):
        await doubled_after_go(4, orchestration_backend=DurableBackend(store), instance_id="s1")
    with pytest.raises(CorruptStateError, match="is not signed, and this backend loads only"):
        signed(store).load_state("s1")


async def test_signed_state_is_refused_without_the_key_saying_how_to_open_it():
    store = InMemoryStateStore()
    await paused(store)
    with pytest.raises(CorruptStateError, match=r"record 1 of its log is signed; open the store"):
        DurableBackend(store).read_state("s1")


async def test_an_unsigned_event_is_refused_before_it_is_unpickled():
    store = InMemoryStateStore()
    await paused(store)
    store.append_event("s1", cloudpickle.dumps(("go", RunsWhenUnpickled())))
    RAN.clear()
    with pytest.raises(CorruptStateError, match=r"'s1': event \d+ is not signed"):
        signed(store).pending_events("s1")
    with pytest.raises(CorruptStateError, match="is not signed"):
        await doubled_after_go(4, orchestration_backend=signed(store), instance_id="s1")
    assert RAN == []


@pytest.mark.parametrize("key", [b"", "", 42])
def test_a_secret_key_must_be_non_empty_bytes_or_text(key):
    with pytest.raises(TypeError, match="secret_key must be non-empty bytes or str"):
        DurableBackend(secret_key=key)


def test_a_text_key_signs_as_its_utf8_bytes():
    assert DurableBackend(secret_key="clé")._key == "clé".encode()


@pytest.mark.slow
async def test_the_command_line_takes_the_key_from_the_environment(tmp_path):
    store = DiskStateStore(tmp_path / "store")
    await paused(store)
    command = [sys.executable, "-m", "durable", "status", "--store", f"file://{tmp_path / 'store'}"]
    environment = {**os.environ, "DURABLE_SECRET_KEY": KEY.decode()}
    with_key = subprocess.run(
        [*command, "s1"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert with_key.returncode == 0, with_key.stderr
    assert "waiting" in with_key.stdout
    environment.pop("DURABLE_SECRET_KEY")
    without = subprocess.run(
        [*command, "s1"], env=environment, capture_output=True, text=True, timeout=60
    )
    assert without.returncode != 0
    assert "is signed; open the store with its secret key" in without.stderr


@make_durable
async def many_doublings(count):
    total = 0
    for n in range(count):
        total += await durable_execute(double, n)
    await wait_for_event("go")
    return total


async def test_a_signed_log_compacted_many_times_resumes():
    store = InMemoryStateStore()
    backend = DurableBackend(store, secret_key=KEY, compact_after=3)
    with pytest.raises(PauseForEventException):
        await many_doublings(10, orchestration_backend=backend, instance_id="s2")
    assert len(store.read_records("s2")) <= 3
    resumed = DurableBackend(store, secret_key=KEY, compact_after=3)
    resumed.publish_event("s2", "go")
    assert await many_doublings(10, orchestration_backend=resumed, instance_id="s2") == 90
