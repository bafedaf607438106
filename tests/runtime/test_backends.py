"""Backends: the `DurableBackend` inbox, a custom `OrchestrationBackend`, the default backend."""

from __future__ import annotations

import datetime
import decimal
import fractions
import os
import pickle
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    Event,
    InMemoryStateStore,
    OrchestrationBackend,
    PauseForEventException,
    make_durable,
    wait_for_event,
)
from durable.stores import store_from_url
from durable.stores.base import InstanceSummary


# -- durable functions used by the tests ----------------------------------------------------------
@make_durable
async def greet(name):
    raise PauseForEventException("allow")
    return f"hello {name}"


@make_durable
async def payload_of(event_name):
    return await wait_for_event(event_name)


@make_durable
async def two_payloads_of(event_name):
    first = await wait_for_event(event_name)
    second = await wait_for_event(event_name)
    return [first, second]


@dataclass(frozen=True)
class Approval:
    by: str
    amount: decimal.Decimal
    tags: tuple[str, ...] = ()


PAYLOADS = {
    "none": None,
    "int": 7,
    "big_int": 2**100,
    "float": -1.5,
    "complex": 3 - 4j,
    "str": "gr\u00fc\u00df dich",
    "bytes": b"\x00\xffraw",
    "list": [1, [2, 3], "four"],
    "dict": {"order": 7, "items": {"a": (1, 2)}},
    "set": {1, 2, 3},
    "frozenset": frozenset({"a", "b"}),
    "decimal": decimal.Decimal("19.99"),
    "fraction": fractions.Fraction(1, 3),
    "datetime": datetime.datetime(2024, 5, 17, 12, 30, tzinfo=datetime.UTC),
    "dataclass": Approval("ada", decimal.Decimal("100.00"), ("urgent",)),
}


@pytest.fixture
def store_dir(tmp_path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def backend(store_dir) -> DurableBackend:
    return DurableBackend(DiskStateStore(store_dir))


async def paused(call) -> PauseForEventException:
    with pytest.raises(PauseForEventException) as caught:
        await call
    return caught.value


# -- the inbox of DurableBackend ------------------------------------------------------------------
def test_event_published_before_anyone_waits_is_kept(backend):
    backend.publish_event("greet-1", "allow", "yes")
    assert backend.pending_events("greet-1") == [Event("allow", "yes")]


async def test_event_published_before_the_instance_starts_is_consumed_at_its_first_wait(backend):
    backend.publish_event("greet-1", "allow")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


async def test_paused_instance_resumes_after_its_event_is_published(backend):
    pause = await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    assert (pause.event, pause.instance_id) == ("allow", "greet-1")
    backend.publish_event("greet-1", "allow")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


async def test_an_event_is_consumed_exactly_once(backend):
    backend.publish_event("order-7", "approved", "only one")
    await paused(two_payloads_of("approved", orchestration_backend=backend, instance_id="order-7"))
    await paused(two_payloads_of("approved", orchestration_backend=backend, instance_id="order-7"))
    assert backend.pending_events("order-7") == []


async def test_each_published_event_satisfies_one_wait(backend):
    backend.publish_event("order-7", "approved", "first")
    await paused(two_payloads_of("approved", orchestration_backend=backend, instance_id="order-7"))
    backend.publish_event("order-7", "approved", "second")
    result = await two_payloads_of("approved", orchestration_backend=backend, instance_id="order-7")
    assert result == ["first", "second"]


async def test_events_of_one_name_are_delivered_oldest_first(backend):
    backend.publish_event("order-7", "a", "a1")
    backend.publish_event("order-7", "b", "b1")
    backend.publish_event("order-7", "a", "a2")
    result = await two_payloads_of("a", orchestration_backend=backend, instance_id="order-7")
    assert result == ["a1", "a2"]


async def test_waiting_for_one_name_leaves_events_of_other_names_pending(backend):
    backend.publish_event("order-7", "a", "a1")
    backend.publish_event("order-7", "b", "b1")
    backend.publish_event("order-7", "a", "a2")
    await two_payloads_of("a", orchestration_backend=backend, instance_id="order-7")
    assert backend.pending_events("order-7") == [Event("b", "b1")]


def test_wait_for_event_takes_events_of_one_name_oldest_first(backend):
    for name, payload in [("a", "a1"), ("b", "b1"), ("a", "a2")]:
        backend.publish_event("order-7", name, payload)
    backend.load_state("order-7")
    taken = [backend.wait_for_event("order-7", "a") for _ in range(3)]
    assert taken == [Event("a", "a1"), Event("a", "a2"), None]


def test_events_for_one_instance_are_not_delivered_to_another(backend):
    backend.publish_event("order-7", "approved")
    backend.load_state("order-8")
    assert backend.wait_for_event("order-8", "approved") is None


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_payload_comes_back_equal(payload, backend):
    backend.publish_event("order-7", "data", payload)
    assert await payload_of("data", orchestration_backend=backend, instance_id="order-7") == payload


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
async def test_payload_comes_back_equal_when_published_to_a_paused_instance(
    payload, backend, store_dir
):
    await paused(payload_of("data", orchestration_backend=backend, instance_id="order-7"))
    backend.publish_event("order-7", "data", payload)
    resumed = DurableBackend(DiskStateStore(store_dir))
    assert await payload_of("data", orchestration_backend=resumed, instance_id="order-7") == payload


async def test_publish_event_async_stores_the_event(backend):
    await backend.publish_event_async("order-7", "approved", {"by": "ada"})
    assert backend.pending_events("order-7") == [Event("approved", {"by": "ada"})]


async def test_publish_event_async_resumes_a_paused_instance(backend):
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    await backend.publish_event_async("greet-1", "allow")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


def test_publish_event_refuses_an_empty_event_name(backend):
    with pytest.raises(TypeError, match="event name"):
        backend.publish_event("order-7", "")
    assert backend.pending_events("order-7") == []


def test_publish_event_refuses_a_non_string_event_name(backend):
    with pytest.raises(TypeError, match="event name"):
        backend.publish_event("order-7", 7)


def test_events_survive_a_new_backend_over_the_same_disk_store_directory(backend, store_dir):
    backend.publish_event("order-7", "a", "a1")
    backend.publish_event("order-7", "b", {"n": 1})
    reopened = DurableBackend(DiskStateStore(store_dir))
    assert reopened.pending_events("order-7") == [Event("a", "a1"), Event("b", {"n": 1})]


async def test_instance_paused_in_one_backend_resumes_in_a_new_one_over_the_same_directory(
    backend, store_dir
):
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    DurableBackend(DiskStateStore(store_dir)).publish_event("greet-1", "allow")
    resumed = DurableBackend(DiskStateStore(store_dir))
    assert await greet("Ada", orchestration_backend=resumed, instance_id="greet-1") == "hello Ada"


async def test_consumed_event_leaves_the_inbox_once_the_resumed_state_is_saved(backend):
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    backend.publish_event("greet-1", "allow")
    await greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert backend.pending_events("greet-1") == []
    assert backend.store.read_events("greet-1") == []


class WriteWatchingStore(DiskStateStore):
    """A disk store that notes which events were still stored at each state write."""

    def __init__(self, path) -> None:
        super().__init__(path)
        self.events_at_writes: list[list[int]] = []

    def append_record(
        self, instance_id: str, record: bytes, summary: InstanceSummary | None = None
    ) -> None:
        self.events_at_writes.append([event_id for event_id, _ in self.read_events(instance_id)])
        super().append_record(instance_id, record, summary)


async def test_consumed_event_is_still_stored_while_the_state_recording_it_is_written(store_dir):
    store = WriteWatchingStore(store_dir)
    backend = DurableBackend(store)
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    backend.publish_event("greet-1", "allow")
    (event_id,) = [event_id for event_id, _ in store.read_events("greet-1")]
    writes_before = len(store.events_at_writes)
    await greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    # The first write of the resumed run journals the consumption.
    assert store.events_at_writes[writes_before] == [event_id]
    assert store.read_events("greet-1") == []


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an `Exception`, so nothing records a failure."""


class CrashBeforeDeletingEvents(DiskStateStore):
    """A disk store whose process "dies" right after a state write, before events are deleted."""

    def delete_events(self, instance_id: str, event_ids: list[int]) -> None:
        raise SimulatedCrash


async def test_event_recorded_as_consumed_is_not_redelivered_after_a_crash_before_its_deletion(
    backend, store_dir
):
    await paused(two_payloads_of("go", orchestration_backend=backend, instance_id="order-7"))
    backend.publish_event("order-7", "go", "first")
    crashing = DurableBackend(CrashBeforeDeletingEvents(store_dir))
    with pytest.raises(SimulatedCrash):
        await two_payloads_of("go", orchestration_backend=crashing, instance_id="order-7")
    assert len(backend.pending_events("order-7")) == 1  # the crash left it on disk

    restarted = DurableBackend(DiskStateStore(store_dir))
    await paused(two_payloads_of("go", orchestration_backend=restarted, instance_id="order-7"))
    assert restarted.pending_events("order-7") == []
    restarted.publish_event("order-7", "go", "second")
    result = await two_payloads_of("go", orchestration_backend=restarted, instance_id="order-7")
    assert result == ["first", "second"]


def test_claimed_event_is_offered_again_when_its_consumption_was_never_saved(backend):
    backend.publish_event("order-7", "approved", "yes")
    backend.load_state("order-7")
    assert backend.wait_for_event("order-7", "approved") == Event("approved", "yes")
    backend.load_state("order-7")  # a new run: the first one never saved
    assert backend.wait_for_event("order-7", "approved") == Event("approved", "yes")


def test_claimed_event_stays_in_the_store_until_a_state_is_saved(backend):
    backend.publish_event("order-7", "approved", "yes")
    backend.load_state("order-7")
    backend.wait_for_event("order-7", "approved")
    assert backend.pending_events("order-7") == [Event("approved", "yes")]


def test_claimed_event_is_not_offered_twice_within_one_run(backend):
    backend.publish_event("order-7", "approved", "yes")
    backend.load_state("order-7")
    backend.wait_for_event("order-7", "approved")
    assert backend.wait_for_event("order-7", "approved") is None


def test_saving_state_deletes_the_events_claimed_by_the_run(backend):
    backend.publish_event("order-7", "approved", "yes")
    backend.publish_event("order-7", "other", "kept")
    backend.load_state("order-7")
    backend.wait_for_event("order-7", "approved")
    backend.save_state("order-7", {"step": 1})
    assert backend.pending_events("order-7") == [Event("other", "kept")]


def test_saved_state_loads_back_equal(backend):
    backend.save_state("order-7", {"step": 1, "data": b"\x00"})
    assert backend.load_state("order-7") == {"step": 1, "data": b"\x00"}


def test_loading_an_unknown_instance_returns_none(backend):
    assert backend.load_state("never-started") is None


async def test_quick_start_flow_runs_on_the_in_memory_backend():
    backend = DurableBackend(InMemoryStateStore())
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    backend.publish_event("greet-1", "allow")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


# -- a custom backend ----------------------------------------------------------------------------
class DictBackend(OrchestrationBackend):
    """Only the three required methods, over plain dictionaries."""

    def __init__(self) -> None:
        self.states: dict[str, bytes] = {}
        self.inboxes: dict[str, list[Event]] = {}

    def load_state(self, instance_id):
        data = self.states.get(instance_id)
        return None if data is None else pickle.loads(data)

    def save_state(self, instance_id, state):
        self.states[instance_id] = pickle.dumps(state)

    def wait_for_event(self, instance_id, event_name):
        inbox = self.inboxes.get(instance_id, [])
        for event in inbox:
            if event.name == event_name:
                inbox.remove(event)
                return event
        return None

    def deliver(self, instance_id, event_name, payload=None):
        self.inboxes.setdefault(instance_id, []).append(Event(event_name, payload))


async def test_custom_backend_pauses_the_quick_start_flow_for_its_event():
    backend = DictBackend()
    pause = await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    assert (pause.event, pause.instance_id) == ("allow", "greet-1")
    assert "greet-1" in backend.states


async def test_custom_backend_stays_paused_until_the_event_is_delivered():
    backend = DictBackend()
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))


async def test_custom_backend_runs_the_quick_start_flow_to_its_result():
    backend = DictBackend()
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    backend.deliver("greet-1", "allow")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


async def test_custom_backend_returns_the_stored_result_of_a_finished_instance():
    backend = DictBackend()
    backend.deliver("greet-1", "allow")
    await greet("Ada", orchestration_backend=backend, instance_id="greet-1")
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"
    assert backend.inboxes["greet-1"] == []


async def test_custom_backend_delivers_event_payloads():
    backend = DictBackend()
    await paused(payload_of("data", orchestration_backend=backend, instance_id="order-7"))
    backend.deliver("order-7", "data", Approval("ada", decimal.Decimal("1.00")))
    result = await payload_of("data", orchestration_backend=backend, instance_id="order-7")
    assert result == Approval("ada", decimal.Decimal("1.00"))


@dataclass
class DataclassBackend(OrchestrationBackend):
    """A custom backend written as a dataclass (so instances compare by value: unhashable)."""

    states: dict = field(default_factory=dict)
    inbox: list = field(default_factory=list)

    def load_state(self, instance_id):
        return self.states.get(instance_id)

    def save_state(self, instance_id, state):
        self.states[instance_id] = dict(state)

    def wait_for_event(self, instance_id, event_name):
        for event in self.inbox:
            if event.name == event_name:
                self.inbox.remove(event)
                return event
        return None


async def test_custom_backend_written_as_a_dataclass_runs_the_quick_start_flow():
    backend = DataclassBackend()
    await paused(greet("Ada", orchestration_backend=backend, instance_id="greet-1"))
    backend.inbox.append(Event("allow"))
    assert await greet("Ada", orchestration_backend=backend, instance_id="greet-1") == "hello Ada"


class NamedBackend(DictBackend):
    """A custom backend that compares equal to another one with the same name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __eq__(self, other):
        return isinstance(other, NamedBackend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


async def test_custom_backends_that_compare_equal_each_keep_their_own_instances():
    first, second = NamedBackend("shared-name"), NamedBackend("shared-name")
    await paused(greet("Ada", orchestration_backend=first, instance_id="greet-1"))
    await paused(greet("Bob", orchestration_backend=second, instance_id="greet-2"))
    assert list(first.states) == ["greet-1"]
    assert list(second.states) == ["greet-2"]


def test_a_backend_missing_one_of_the_three_methods_cannot_be_created():
    class NoEvents(OrchestrationBackend):
        def load_state(self, instance_id):
            return None

        def save_state(self, instance_id, state):
            pass

    with pytest.raises(TypeError, match="wait_for_event"):
        NoEvents()


# -- store URLs and the default backend -----------------------------------------------------------
@pytest.mark.parametrize("url", ["s3://bucket/durable", "redis://localhost:6379", "/just/a/path"])
def test_store_url_with_an_unsupported_scheme_is_refused_naming_the_supported_forms(url):
    with pytest.raises(ValueError) as caught:
        store_from_url(url)
    message = str(caught.value)
    assert repr(url) in message
    assert "memory://" in message
    assert "file:///path/to/directory" in message
    assert "sqlite:///" in message


def test_memory_store_url_gives_an_in_memory_store():
    assert isinstance(store_from_url("memory://"), InMemoryStateStore)


def test_file_store_url_gives_a_disk_store_in_that_directory(tmp_path):
    directory = tmp_path / "my durable store"
    store = store_from_url(directory.as_uri())
    assert isinstance(store, DiskStateStore)
    assert store.path == directory
    assert directory.is_dir()


def test_file_store_url_without_a_directory_is_refused():
    with pytest.raises(ValueError, match="names no directory"):
        store_from_url("file://")


GREET_MODULE = """
from durable import PauseForEventException, make_durable


@make_durable
async def greet(name):
    raise PauseForEventException("allow")
    return f"hello {name}"
"""

PAUSE_SCRIPT = """
import asyncio
import durable
from greet_flow import greet

async def main():
    try:
        await greet("Ada", instance_id="greet-1")
    except durable.PauseForEventException as pause:
        print("paused for", pause.event)

asyncio.run(main())
"""

RESUME_SCRIPT = """
import asyncio
import durable
from greet_flow import greet

durable.default_backend().publish_event("greet-1", "allow")
print(asyncio.run(greet("Ada", instance_id="greet-1")))
"""


def run_python(tmp_path: Path, script: str, store_url: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("DURABLE_STORE", None)
    if store_url is not None:
        env["DURABLE_STORE"] = store_url
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def flow_dir(tmp_path) -> Path:
    (tmp_path / "greet_flow.py").write_text(GREET_MODULE)
    return tmp_path


@pytest.mark.slow
def test_durable_store_variable_keeps_a_paused_instance_for_the_next_process(flow_dir, store_dir):
    paused_run = run_python(flow_dir, PAUSE_SCRIPT, store_dir.as_uri())
    assert paused_run.returncode == 0, paused_run.stderr
    assert paused_run.stdout.strip() == "paused for allow"
    assert DiskStateStore(store_dir).list_instances() == ["greet-1"]


@pytest.mark.slow
def test_durable_store_variable_lets_another_process_publish_and_resume(flow_dir, store_dir):
    run_python(flow_dir, PAUSE_SCRIPT, store_dir.as_uri()).check_returncode()
    resumed = run_python(flow_dir, RESUME_SCRIPT, store_dir.as_uri())
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == "hello Ada"
    assert DiskStateStore(store_dir).read_events("greet-1") == []


@pytest.mark.slow
def test_default_backend_without_durable_store_keeps_nothing_between_processes(flow_dir, store_dir):
    run_python(flow_dir, PAUSE_SCRIPT, None).check_returncode()
    resumed = run_python(flow_dir, RESUME_SCRIPT, None)
    assert resumed.returncode == 0, resumed.stderr
    # A fresh in-memory backend: the event arrives before the (new) instance first waits.
    assert resumed.stdout.strip() == "hello Ada"
    assert not store_dir.exists()


@pytest.mark.parametrize(
    ("store_url", "store_type"),
    [(None, "InMemoryStateStore"), ("memory://", "InMemoryStateStore"), ("file", "DiskStateStore")],
)
@pytest.mark.slow
def test_default_backend_uses_the_store_named_by_durable_store(
    store_url, store_type, tmp_path, store_dir
):
    if store_url == "file":
        store_url = store_dir.as_uri()
    script = "import durable; print(type(durable.default_backend().store).__name__)"
    result = run_python(tmp_path, script, store_url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == store_type


def test_default_backend_is_one_backend_per_process(tmp_path):
    script = "import durable; print(durable.default_backend() is durable.default_backend())"
    result = run_python(tmp_path, script, "memory://")
    assert result.stdout.strip() == "True", result.stderr


def test_unsupported_durable_store_is_refused_naming_the_supported_forms(tmp_path):
    result = run_python(tmp_path, "import durable; durable.default_backend()", "s3://bucket")
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "memory:// or file:///path/to/directory or sqlite:///" in result.stderr


class _StoreReusingEventIds(InMemoryStateStore):
    """Hands out event id 1 whenever no event is stored (as a clock stepping back could)."""

    def append_event(self, instance_id: str, data: bytes) -> int:
        with self._lock:
            inbox = self._events.setdefault(instance_id, {})
            event_id = max(inbox, default=0) + 1
            inbox[event_id] = bytes(data)
            return event_id


async def test_an_event_reusing_the_id_of_a_consumed_one_is_not_deleted_on_load():
    backend = DurableBackend(_StoreReusingEventIds())
    backend.publish_event("reuse", "go", "first")
    assert backend.wait_for_event("reuse", "go") == Event("go", "first")
    backend.save_state("reuse", {"status": "running"})  # records and deletes event 1
    backend.publish_event("reuse", "go", "second")  # gets id 1 again
    backend.load_state("reuse")  # finishing the recorded deletion must spare it
    assert backend.pending_events("reuse") == [Event("go", "second")]


def test_records_after_a_compaction_add_to_its_journal_and_code_versions():
    backend = DurableBackend(InMemoryStateStore())
    backend.save_state(
        "i",
        {
            "status": "running",
            "journal": {1: {"status": "succeeded", "value": 1}},
            "code_versions": {"fingerprint": "version"},
            "history": [],
        },
    )
    step = {"set": {"updated_at": 1.0}, "entries": {2: {"status": "succeeded", "value": 2}}}
    backend.save_changes("i", step, lambda: {})
    state = backend.load_state("i")
    assert sorted(state["journal"]) == [1, 2]
    assert state["code_versions"] == {"fingerprint": "version"}
