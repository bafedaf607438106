"""A checkpoint larger than `DurableBackend(max_state_bytes=...)` is refused before anything of
it is written: `StateTooLargeError` names the checkpoint and the largest live values, the
instance stays at its last write (not failed, not a store failure), and a backend with a
larger limit resumes it — over every kind of store."""

from __future__ import annotations

import pytest

from durable import (
    CheckpointException,
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    PostgresStateStore,
    SQLiteStateStore,
    StateTooLargeError,
    durable_execute,
    make_durable,
)

STORES = ["memory", "disk", "sqlite", "postgres"]
MESSAGE = 300_000  # bytes in one message: the fourth pushes the state past 1 MiB


@pytest.fixture(params=STORES)
def store(request, tmp_path):
    kind = request.param
    if kind == "memory":
        opened = InMemoryStateStore()
    elif kind == "disk":
        opened = DiskStateStore(tmp_path / "store")
    elif kind == "sqlite":
        opened = SQLiteStateStore(tmp_path / "store.db")
    else:
        opened = PostgresStateStore(
            request.getfixturevalue("postgres_dsn"),
            schema=request.getfixturevalue("postgres_schema"),
        )
    yield opened
    close = getattr(opened, "close", None)
    if close is not None:
        close()


def message(number: int) -> str:
    return f"{number}:" + "x" * MESSAGE


@make_durable
async def growing_conversation(messages: int) -> int:
    small_note = "kept small"
    conversation = []
    for number in range(messages):
        conversation.append(await durable_execute(message, number))
    return len(conversation) + len(small_note)


@make_durable
async def large_result() -> str:
    text = await durable_execute(message, 0)
    return text * 5


async def test_a_state_over_the_limit_is_refused_naming_the_largest_live_values(store):
    backend = DurableBackend(store, max_state_bytes=1 << 20)
    with pytest.raises(StateTooLargeError) as refused:
        await growing_conversation(6, orchestration_backend=backend, instance_id="agent-1")
    error = refused.value
    assert isinstance(error, CheckpointException)
    assert error.instance_id == "agent-1" and error.limit == 1 << 20 and error.size > 1 << 20
    text = str(error)
    assert "instance 'agent-1'" in text and "max_state_bytes (1.0 MiB)" in text
    assert "growing_conversation line" in text
    largest = text.split("Largest live values: ")[1]
    assert largest.startswith(
        "tests.runtime.test_state_size.growing_conversation: local variable 'conversation' (list)"
    )
    assert "nothing was written" in text and "keep only its key" in text


async def test_a_refused_state_leaves_the_instance_at_its_last_write_to_resume_with_more_room(
    store,
):
    small = DurableBackend(store, max_state_bytes=1 << 20)
    with pytest.raises(StateTooLargeError) as refused:
        await growing_conversation(6, orchestration_backend=small, instance_id="agent-1")
    assert not getattr(refused.value, "durable_write_failed", False)  # not the store's fault
    state = small.read_state("agent-1")
    assert state["status"] == "running"  # at its last write: neither failed nor lost
    roomy = DurableBackend(store, max_state_bytes=64 << 20)
    assert await growing_conversation(6, orchestration_backend=roomy, instance_id="agent-1") == 16


async def test_a_result_over_the_limit_is_refused_and_the_instance_is_not_failed(store):
    backend = DurableBackend(store, max_state_bytes=1 << 20)
    with pytest.raises(StateTooLargeError) as refused:
        await large_result(orchestration_backend=backend, instance_id="report-1")
    assert not getattr(refused.value, "durable_write_failed", False)
    assert backend.read_state("report-1")["status"] != "failed"


def test_the_limit_must_be_a_positive_number_of_bytes():
    with pytest.raises(ValueError, match="max_state_bytes must be an int >= 1"):
        DurableBackend(InMemoryStateStore(), max_state_bytes=0)


def test_the_limit_is_never_above_what_the_store_holds_in_one_record(tmp_path):
    store = SQLiteStateStore(tmp_path / "store.db")
    try:
        backend = DurableBackend(store, max_state_bytes=1 << 40)
        assert backend.max_state_bytes == store.max_record_bytes < 1 << 30
    finally:
        store.close()
