"""Large values out of line: a snapshot of a large state writes the strings and bytes it
added, not the whole state again, and every resume restores what a whole snapshot would —
equal values, and the same sharing of objects between variables and frames. Generated
sequences of mutations (append, in-place edit, replace, alias, delete, shared sub-objects)
are paused at every step and resumed by a new backend, over every kind of store."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import (
    DiskStateStore,
    DurableBackend,
    PauseForEventException,
    PostgresStateStore,
    SQLiteStateStore,
    Stored,
    durable_execute,
    make_durable,
    wait_for_event,
)
from durable.runtime import out_of_line as settings_of_blobs
from tests.worker.test_worker import STORES, make_store


def text(size: int, seed: int) -> str:
    return (f"{seed}:" + "é" * size)[:size]


def apply(operation: tuple, messages: list, table: dict, alias: object) -> object:
    """One mutation of the state; returns the new `alias`."""
    kind, size, seed = operation
    if kind == "append":
        messages.append({"role": "tool", "content": text(size, seed)})
    elif kind == "edit" and messages:
        messages[seed % len(messages)]["content"] = text(size, seed)
    elif kind == "replace":
        messages[:] = [{"role": "user", "content": text(size, seed)}]
    elif kind == "alias" and messages:
        return messages[seed % len(messages)]
    elif kind == "unalias":
        return None
    elif kind == "share" and messages:
        table[f"shared-{seed % 3}"] = messages[seed % len(messages)]
    elif kind == "delete" and messages:
        del messages[seed % len(messages)]
    elif kind == "bytes":
        table["raw"] = text(size, seed).encode()
    elif kind == "same_text" and messages:
        # One string object in two places: still one object after a resume.
        table["quoted"] = messages[seed % len(messages)].get("content")
    return alias


def observed(messages: list, table: dict, alias: object) -> tuple:
    """The state's values and which of its objects are the same object."""
    objects = [messages, *messages, *table.values(), alias]
    contents = [m.get("content") for m in messages]
    sharing = [[j for j, other in enumerate(objects) if other is one] for one in objects]
    text_sharing = [
        [j for j, other in enumerate(contents) if other is one] for one in table.values()
    ]
    return (messages, table, alias), sharing, text_sharing


def tick(step: int) -> int:
    return step


@make_durable
async def mutated(operations: list) -> tuple:
    messages: list = []
    table: dict = {}
    alias: object = None
    for step, operation in enumerate(operations):
        await durable_execute(tick, step)
        alias = apply(operation, messages, table, alias)
        await wait_for_event("next")
        await helper_keeps_a_frame(messages, step)
    return observed(messages, table, alias)


async def helper_keeps_a_frame(messages: list, step: int) -> None:
    """A second frame holding the same list while it checkpoints."""
    await durable_execute(tick, step)
    messages.append(messages[-1] if messages and step % 4 == 0 else {"role": "note"})


def plain(operations: list) -> tuple:
    messages: list = []
    table: dict = {}
    alias: object = None
    for step, operation in enumerate(operations):
        alias = apply(operation, messages, table, alias)
        messages.append(messages[-1] if messages and step % 4 == 0 else {"role": "note"})
    return observed(messages, table, alias)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "append",
                "edit",
                "replace",
                "alias",
                "unalias",
                "share",
                "delete",
                "bytes",
                "same_text",
            ]
        ),
        st.integers(0, 60),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=12,
)


@pytest.fixture
def out_of_line_from_the_first_snapshot(monkeypatch):
    """Strings and bytes of 16 or more go out of line from an instance's first snapshot."""
    monkeypatch.setattr(settings_of_blobs, "MIN_SIZE", 16)
    monkeypatch.setattr(settings_of_blobs, "LARGE_STATE", 0)
    monkeypatch.setattr(settings_of_blobs, "ENABLED", True)


async def run_resuming_at_every_step(operations: list, kind: str, directory) -> tuple:
    store = make_store(kind, directory)
    try:
        while True:
            backend = DurableBackend(store, compact_after=5)  # a resume after each pause
            try:
                return await mutated(operations, orchestration_backend=backend, instance_id="m")
            except PauseForEventException:
                DurableBackend(store).publish_event("m", "next")
    finally:
        close = getattr(store, "close", None)
        if close is not None:
            close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", STORES)
def test_generated_mutations_resume_to_what_a_whole_snapshot_restores(
    kind, tmp_path_factory, out_of_line_from_the_first_snapshot
):
    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(operations=OPERATIONS)
    def check(operations):
        directory = tmp_path_factory.mktemp("m")
        resumed = asyncio.run(run_resuming_at_every_step(operations, kind, directory))
        assert resumed == plain(operations)

    check()


async def test_a_step_of_a_large_state_writes_what_it_added_not_the_whole_state(tmp_path):
    written: list[int] = []

    class Counting(DiskStateStore):
        def append_record(self, instance_id, record, summary=None, **kwargs):
            written.append(len(record))
            return super().append_record(instance_id, record, summary, **kwargs)

    @make_durable
    async def conversation_grows(steps: int) -> int:
        conversation = []
        for step in range(steps):
            conversation.append(await durable_execute(text, 20_000, step))
        return sum(map(len, conversation))

    backend = DurableBackend(Counting(tmp_path / "store"))
    assert await conversation_grows(40, orchestration_backend=backend, instance_id="a") == 800_000
    # The state ends at 800 kB; each late step adds one 20 kB string (its journal entry and
    # its blob) and writes far less than the whole state.
    assert max(written[-10:]) < 100_000


@make_durable
async def waits_with_a_large_state() -> int:
    pages = [await durable_execute(text, 30_000, n) for n in range(8)]
    same = pages[3]
    await wait_for_event("go")
    return sum(map(len, pages)) + (same is pages[3])


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_large_state_resumes_through_a_new_store_object_from_its_blobs(
    kind, tmp_path, request
):
    def opened():
        if kind == "sqlite":
            return SQLiteStateStore(tmp_path / "store.db")
        return PostgresStateStore(
            request.getfixturevalue("postgres_dsn"),
            schema=request.getfixturevalue("postgres_schema"),
        )

    store, fresh_store = opened(), None
    try:
        backend = DurableBackend(store)
        with pytest.raises(PauseForEventException):
            await waits_with_a_large_state(orchestration_backend=backend, instance_id="w")
        state = backend.read_state("w")
        assert state["blobs"] and len(state["snapshot"]) < 20_000  # the pages are out of line
        backend.publish_event("w", "go")
        fresh_store = opened()
        fresh = DurableBackend(fresh_store)
        assert await waits_with_a_large_state(orchestration_backend=fresh, instance_id="w") == (
            240_001
        )
        # Completed: the blobs are garbage, and the log is rewritten without them.
        assert b"\xc3\xa9" * 1000 not in b"".join(fresh_store.read_records("w"))
    finally:
        for opened_store in (store, fresh_store):
            if opened_store is not None:
                opened_store.close()


def test_out_of_line_can_be_turned_off_or_forced_by_the_environment():
    import subprocess
    import sys

    for mode, expected in (("off", "False 4096"), ("always", "True 16")):
        done = subprocess.run(
            [sys.executable, "-c", "from durable.runtime import out_of_line as o; "
             "print(o.ENABLED, o.MIN_SIZE)"],
            env={"DURABLE_OUT_OF_LINE": mode, "PATH": ""},
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert done.stdout.strip() == expected


@make_durable
async def paused_with_pages() -> int:
    pages = [await durable_execute(text, 30_000, n) for n in range(8)]
    await wait_for_event("go")
    return len(pages)


async def test_a_large_state_is_shown_edited_and_forked_with_its_values_out_of_line(tmp_path):
    from durable.runtime.operate import fork_instance
    from durable.runtime.safe_pickle import safe_loads

    store = SQLiteStateStore(tmp_path / "store.db")
    try:
        backend = DurableBackend(store)
        with pytest.raises(PauseForEventException):
            await paused_with_pages(orchestration_backend=backend, instance_id="p")
        assert backend.read_state("p")["blobs"]
        handle = paused_with_pages.handle("p", orchestration_backend=backend)
        for loads in (None, safe_loads):  # shown trusted, and without running anything
            [frame] = handle.frames(loads=loads)
            assert frame.live_locals["pages"] == [text(30_000, n) for n in range(8)]
        await asyncio.to_thread(fork_instance, backend, "p", "p-fork")
        await asyncio.to_thread(handle.edit, 0, pages=["short"])
        backend.publish_event("p", "go")
        backend.publish_event("p-fork", "go")
        assert await paused_with_pages(orchestration_backend=backend, instance_id="p") == 1
        assert await paused_with_pages(orchestration_backend=backend, instance_id="p-fork") == 8
    finally:
        store.close()


DOCUMENTS: dict[str, str] = {}
LOADS: list[str] = []


def store_document(key: str) -> str:
    DOCUMENTS[key] = text(2_000_000, 7)
    return key


def read_document(key: str) -> str:
    LOADS.append(key)
    return DOCUMENTS[key]


@make_durable
async def summarize(key: str) -> int:
    document = Stored(read_document, await durable_execute(store_document, key))
    first_half = len(document.value) // 2
    await wait_for_event("go")
    return first_half + len(document.value)


async def test_a_value_kept_out_of_the_snapshot_on_purpose_is_loaded_again_after_a_resume(
    tmp_path,
):
    LOADS.clear()
    store = DiskStateStore(tmp_path / "store")
    backend = DurableBackend(store)
    with pytest.raises(PauseForEventException):
        await summarize("doc-1", orchestration_backend=backend, instance_id="s")
    assert sum(map(len, store.read_records("s"))) < 20_000  # how to load it, not 2 MB
    [frame] = summarize.handle("s", orchestration_backend=backend).frames()
    assert repr(frame.live_locals["document"]).startswith("Stored(read_document, 'doc-1')")
    backend.publish_event("s", "go")
    fresh = DurableBackend(DiskStateStore(tmp_path / "store"))
    assert await summarize("doc-1", orchestration_backend=fresh, instance_id="s") == 3_000_000
    assert LOADS == ["doc-1", "doc-1"]  # once per run, at first use


def test_stored_needs_a_function_that_loads_the_value():
    with pytest.raises(TypeError, match="the function that loads the value"):
        Stored("doc-1")
