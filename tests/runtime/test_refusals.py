"""Durable operations where a checkpoint cannot resume are compile errors, in every form."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

import durable
from durable import (
    DurableCompileError,
    durable_execute,
    make_durable,
    sleep,
    step,
    wait_for_event,
)


@step
def charge(amount: int) -> int:
    return amount


@make_durable
async def child() -> int:
    return 1


@contextlib.contextmanager
def held():
    yield


async def in_with_wait():
    with held():
        await wait_for_event("go")


async def in_with_sleep():
    with held():
        await sleep(1)


async def in_with_module_attribute():
    with held():
        await durable.sleep(1)


async def in_with_execute():
    with held():
        return await durable_execute(print, "x")


async def in_with_step():
    with held():
        return await charge(3)


async def in_with_durable_function():
    with held():
        return await child()


async def in_async_for(items):
    async for _item in items:
        await wait_for_event("next")


async def in_with_first():
    with held():
        return await durable.first(wait_for_event("a"), wait_for_event("b"))


@pytest.mark.parametrize(
    ("function", "operation", "block"),
    [
        (in_with_wait, "wait_for_event()", "with"),
        (in_with_sleep, "sleep()", "with"),
        (in_with_module_attribute, "durable.sleep()", "with"),
        (in_with_execute, "durable_execute()", "with"),
        (in_with_step, "charge()", "with"),
        (in_with_durable_function, "child()", "with"),
        (in_async_for, "wait_for_event()", "async for"),
        (in_with_first, "durable.first()", "with"),
    ],
)
def test_a_durable_operation_in_a_block_that_cannot_resume_is_a_compile_error(
    function, operation, block
):
    with pytest.raises(DurableCompileError) as raised:
        make_durable(function)
    (diagnostic,) = raised.value.diagnostics
    assert diagnostic.code == "DUR104"
    assert diagnostic.filename == __file__
    assert f"a durable operation ({operation}) inside '{block}'" in diagnostic.message
    if block == "with":
        assert "durable.resumable(manager)" in diagnostic.hint


async def plain_awaits_in_native_blocks():
    async with contextlib.AsyncExitStack():
        await asyncio.sleep(0)
    with held():
        value = await asyncio.sleep(0, result=5)
    return value


def test_plain_awaits_inside_with_and_async_with_still_compile():
    make_durable(plain_awaits_in_native_blocks)


# -- tasks of their own, calls never awaited ----------------------------------------------------
DONE: list = []


def record(value: int) -> int:
    DONE.append(value)
    return value


@make_durable
async def execute_in_a_task():
    task = asyncio.create_task(durable_execute(record, 1))
    return await task


async def test_a_durable_call_in_a_task_of_its_own_says_to_await_it_or_gather():
    with pytest.raises(durable.CheckpointException) as raised:
        await execute_in_a_task(orchestration_backend=durable.DurableBackend())
    message = str(raised.value)
    assert "started as a task of its own (asyncio.create_task" in message
    assert "asyncio.gather(...) or durable.first(...)" in message
    assert DONE == []


async def test_a_durable_call_in_a_task_outside_a_durable_run_is_a_plain_call():
    assert await asyncio.create_task(durable_execute(record, 2)) == 2
    assert DONE[-1] == 2


@make_durable
async def forgets_to_await():
    charge(5)
    return "done"


async def test_a_step_called_without_await_warns_naming_the_step_and_line():
    with pytest.warns(
        RuntimeWarning,
        match=r"durable_execute\(.*charge\) was never awaited"
        r" \(in forgets_to_await\), so it did not run",
    ) as caught:
        assert await forgets_to_await(orchestration_backend=durable.DurableBackend()) == "done"
    (warning,) = [w for w in caught if "never awaited" in str(w.message)]
    assert warning.filename == __file__
    source_line = open(__file__).read().splitlines()[warning.lineno - 1]
    assert "charge(5)" in source_line


async def test_an_awaited_step_does_not_warn(recwarn):
    backend = durable.DurableBackend()
    assert await in_with_step_free(orchestration_backend=backend) == 3
    assert not [w for w in recwarn if "never awaited" in str(w.message)]


@make_durable
async def in_with_step_free():
    return await charge(3)
