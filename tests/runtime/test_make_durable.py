"""make_durable on bad input: each mistake gets a clear error that says what to do; the
typed call form `program.using(backend, instance_id=...)(...)`."""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest

from durable import (
    AlreadyDurableException,
    CheckpointException,
    DurableBackend,
    DurableProgram,
    InMemoryStateStore,
    NoSourceCodeException,
    PauseForEventException,
    default_backend,
    make_durable,
    wait_for_event,
)


def test_works_as_a_call_and_as_a_decorator():
    async def plain(x):
        return x

    @make_durable
    async def decorated(x):
        return x

    assert isinstance(make_durable(plain), DurableProgram)
    assert isinstance(decorated, DurableProgram)
    assert asyncio.run(decorated(4, orchestration_backend=DurableBackend())) == 4


def test_none_is_a_type_error_not_a_decorator():
    with pytest.raises(TypeError, match="expects an 'async def' function, got None"):
        make_durable(None)


def test_none_with_options_is_a_type_error_too():
    with pytest.raises(TypeError, match="got None"):
        make_durable(None, on_code_change="fail")


def test_works_as_a_decorator_with_options():
    @make_durable(on_code_change="fail")
    async def decorated(x):
        return x

    assert isinstance(decorated, DurableProgram)
    assert asyncio.run(decorated(5, orchestration_backend=DurableBackend())) == 5


def test_sync_function_is_a_type_error_naming_it():
    def sync(x):
        return x

    with pytest.raises(TypeError, match="sync is a regular function; define it with 'async def'"):
        make_durable(sync)


def test_lambda_is_a_type_error():
    with pytest.raises(TypeError, match="lambda"):
        make_durable(lambda: None)


def test_builtin_is_a_type_error():
    with pytest.raises(TypeError, match="builtin"):
        make_durable(len)


def test_async_generator_is_a_type_error():
    async def agen():
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        make_durable(agen)


def test_function_without_source_raises_no_source_code_exception():
    namespace: dict = {}
    exec("async def made_by_exec():\n    return 1\n", namespace)
    with pytest.raises(NoSourceCodeException, match="made_by_exec"):
        make_durable(namespace["made_by_exec"])


def test_already_durable_function_raises_already_durable_exception():
    @make_durable
    async def once():
        return 1

    with pytest.raises(AlreadyDurableException, match="only once"):
        make_durable(once)


@make_durable
async def keeps_a_lock():
    lock = threading.Lock()
    raise PauseForEventException("later")
    return lock.locked()


def test_unpicklable_local_at_a_checkpoint_names_function_variable_and_line():
    backend = DurableBackend()
    with pytest.raises(CheckpointException) as caught:
        asyncio.run(keeps_a_lock(orchestration_backend=backend, instance_id="lock"))
    message = str(caught.value)
    assert "keeps_a_lock" in message
    assert "'lock'" in message
    with open(__file__) as source:
        line = source.read().splitlines().index('    raise PauseForEventException("later")') + 1
    assert f"line {line}" in message


def test_unpicklable_local_leaves_the_last_good_state_in_place():
    backend = DurableBackend()
    with pytest.raises(CheckpointException):
        asyncio.run(keeps_a_lock(orchestration_backend=backend, instance_id="lock"))
    state = backend.load_state("lock")
    assert state["status"] == "running"
    assert state["snapshot"] is not None


@make_durable
async def iterates_a_generator():
    for item in (n for n in range(3)):  # noqa: B007
        raise PauseForEventException("next")
    return item


def test_unpicklable_loop_iterator_is_described_as_the_loop():
    with pytest.raises(CheckpointException, match="the iterator of the 'for' loop at line"):
        asyncio.run(iterates_a_generator(orchestration_backend=DurableBackend()))


async def _later_value():
    return 1


@make_durable
async def keeps_a_coroutine_and_a_lock():
    later = _later_value()  # saved as its call: not the culprit
    lock = threading.Lock()
    raise PauseForEventException("later")
    return await later, lock.locked()


def test_unpicklable_local_is_found_by_the_pickler_of_the_state():
    """An unstarted coroutine is saved as its call; plain cloudpickle refuses it, and the
    message named it instead of the lock, which is what cannot be saved."""
    with pytest.raises(CheckpointException) as caught:
        asyncio.run(
            keeps_a_coroutine_and_a_lock(orchestration_backend=DurableBackend(), instance_id="c")
        )
    message = str(caught.value)
    assert "local variable 'lock' (lock)" in message
    assert "'later'" not in message


def test_durable_call_in_a_position_that_cannot_resume_is_refused_clearly():
    @make_durable
    async def child():
        return 1

    @make_durable
    async def parent():
        return await asyncio.wait_for(child(), 5)

    with pytest.raises(
        CheckpointException, match="task of its own.*asyncio.wait_for.*cannot be resumed"
    ):
        asyncio.run(parent(orchestration_backend=DurableBackend()))


# -- program.using(backend, instance_id=...)(...): the keyword form, typed ------------------
RUNS: list[tuple[str, int, str]] = []


@make_durable
async def approve(count: int, name: str) -> str:
    RUNS.append(("before", count, name))
    approval = await wait_for_event("approve")
    RUNS.append(("after", count, name))
    return f"{name}x{count} by {approval}"


@make_durable
async def label(count: int, name: str) -> str:
    return f"{name}-{count}"


@pytest.fixture
def backend() -> DurableBackend:
    RUNS.clear()
    return DurableBackend(InMemoryStateStore())


async def test_using_runs_the_instance_it_names_in_its_backend(backend):
    assert await label.using(backend, instance_id="l1")(3, name="a") == "a-3"
    assert backend.load_state("l1")["status"] == "completed"
    assert await label.handle("l1", orchestration_backend=backend).result() == "a-3"


async def test_using_gives_what_the_keyword_form_gives_for_the_same_instance(backend):
    assert await label.using(backend, instance_id="l1")(3, "a") == "a-3"
    records = backend.store.read_records("l1")
    assert await label(3, "a", orchestration_backend=backend, instance_id="l1") == "a-3"
    assert backend.store.read_records("l1") == records  # the ended instance, not run again


async def test_using_resumes_an_instance_paused_by_an_earlier_call(backend):
    with pytest.raises(PauseForEventException):
        await approve.using(backend, instance_id="a1")(2, "b")
    backend.publish_event("a1", "approve", "ada")
    assert await approve.using(backend, instance_id="a1")(2, "b") == "bx2 by ada"
    assert RUNS == [("before", 2, "b"), ("after", 2, "b")]


async def test_using_and_the_keyword_form_resume_each_others_instances(backend):
    with pytest.raises(PauseForEventException):
        await approve(2, "b", orchestration_backend=backend, instance_id="a1")
    backend.publish_event("a1", "approve", "ada")
    assert await approve.using(backend, instance_id="a1")(2, "b") == "bx2 by ada"
    assert RUNS == [("before", 2, "b"), ("after", 2, "b")]


async def test_using_resumes_a_started_instance(backend):
    handle = await label.start(4, "c", instance_id="l1", orchestration_backend=backend)
    assert await label.using(backend, instance_id="l1")(4, "c") == "c-4"
    assert await handle.result() == "c-4"


async def test_using_without_a_backend_runs_in_the_default_backend():
    instance_id = "using-default-backend"
    assert await label.using(instance_id=instance_id)(5, "d") == "d-5"
    assert default_backend().load_state(instance_id)["status"] == "completed"


async def test_using_without_options_inside_a_durable_run_is_a_nested_call(backend):
    @make_durable
    async def outer(count: int) -> str:
        return await approve.using()(count, "e")

    with pytest.raises(PauseForEventException):
        await outer.using(backend, instance_id="o1")(6)
    assert backend.load_state("o1")["status"] == "waiting"  # the child waits in o1's stack
    backend.publish_event("o1", "approve", "bo")
    assert await outer.using(backend, instance_id="o1")(6) == "ex6 by bo"
    assert backend.store.list_instances() == ["o1"]


def test_the_call_using_returns_has_the_functions_signature(backend):
    call = label.using(backend, instance_id="l1")
    assert call.__name__ == "label"
    assert list(inspect.signature(call).parameters) == ["count", "name"]
