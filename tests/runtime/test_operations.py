"""wait_for_event payloads and timeouts, durable sleep, durable_execute — inside and outside."""

from __future__ import annotations

import asyncio
import time

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    EventTimeoutError,
    PauseForEventException,
    durable_execute,
    durable_execute_async,
    make_durable,
    sleep,
    wait_for_event,
)

CALLS: list = []


@make_durable
async def ask():
    answer = await wait_for_event("answer")
    return {"answer": answer}


async def test_wait_for_event_returns_the_published_payload(tmp_path):
    backend = DurableBackend(DiskStateStore(tmp_path))
    with pytest.raises(PauseForEventException):
        await ask(orchestration_backend=backend, instance_id="q")
    backend.publish_event("q", "answer", {"yes": [1, 2]})
    assert await ask(orchestration_backend=backend, instance_id="q") == {"answer": {"yes": [1, 2]}}


async def test_event_published_before_the_wait_is_consumed_without_pausing():
    backend = DurableBackend()
    backend.publish_event("early", "answer", 42)
    assert await ask(orchestration_backend=backend, instance_id="early") == {"answer": 42}


@make_durable
async def ask_briefly():
    return await wait_for_event("answer", timeout=0.05)


async def test_wait_for_event_timeout_raises_event_timeout_error_after_the_deadline():
    backend = DurableBackend()
    with pytest.raises(PauseForEventException):
        await ask_briefly(orchestration_backend=backend, instance_id="t")
    await asyncio.sleep(0.06)
    with pytest.raises(EventTimeoutError, match="'answer'"):
        await ask_briefly(orchestration_backend=backend, instance_id="t")
    with pytest.raises(EventTimeoutError):
        await ask_briefly(orchestration_backend=backend, instance_id="t")


async def test_wait_for_event_outside_a_durable_function_is_an_error():
    with pytest.raises(RuntimeError, match="inside a durable function"):
        await wait_for_event("x")


@make_durable
async def nap(seconds):
    CALLS.append("before")
    await sleep(seconds)
    CALLS.append("after")
    return "rested"


async def test_durable_sleep_saves_its_deadline_before_sleeping(tmp_path):
    CALLS.clear()
    backend = DurableBackend(DiskStateStore(tmp_path))
    first_started = time.monotonic()
    task = asyncio.create_task(nap(1.0, orchestration_backend=backend, instance_id="nap"))
    await asyncio.sleep(0.3)
    state = backend.read_state("nap")
    assert state["status"] == "running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # A new process resumes and sleeps only the remaining time, up to the first deadline.
    started = time.monotonic()
    fresh = DurableBackend(DiskStateStore(tmp_path))
    assert await nap(1.0, orchestration_backend=fresh, instance_id="nap") == "rested"
    assert time.monotonic() - started < 0.95
    assert time.monotonic() - first_started >= 0.99
    assert CALLS == ["before", "after"]


async def test_sleep_outside_a_durable_function_is_asyncio_sleep():
    started = time.monotonic()
    await sleep(0.01)
    assert time.monotonic() - started >= 0.009


def charge(amount):
    CALLS.append(("charge", amount))
    return f"receipt-{amount}"


@make_durable
async def checkout(amount):
    receipt = await durable_execute(charge, amount)
    raise PauseForEventException("shipped")
    return receipt


async def test_durable_execute_result_is_kept_and_not_recomputed_on_resume(tmp_path):
    CALLS.clear()
    store = DiskStateStore(tmp_path)
    with pytest.raises(PauseForEventException):
        await checkout(5, orchestration_backend=DurableBackend(store), instance_id="c")
    DurableBackend(store).publish_event("c", "shipped")
    assert (
        await checkout(5, orchestration_backend=DurableBackend(store), instance_id="c")
        == "receipt-5"
    )
    assert CALLS == [("charge", 5)]


async def test_durable_execute_outside_a_durable_run_is_a_plain_call():
    CALLS.clear()
    assert await durable_execute(charge, 3, reconciler=lambda: None) == "receipt-3"
    assert await durable_execute_async(charge, 4) == "receipt-4"
    assert CALLS == [("charge", 3), ("charge", 4)]


def test_reconciler_must_be_callable():
    with pytest.raises(TypeError, match="^reconciler must be callable$"):
        durable_execute(charge, 1, reconciler=5)


def test_reconciler_must_take_no_arguments():
    with pytest.raises(TypeError, match="^reconciler must be a callable that takes no arguments$"):
        durable_execute(charge, 1, reconciler=lambda x: x)


def test_bound_zero_argument_method_is_accepted_as_reconciler():
    class Ledger:
        def check(self):
            return None

    durable_execute(charge, 1, reconciler=Ledger().check).close()  # validated, not run
