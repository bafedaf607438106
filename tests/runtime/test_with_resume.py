"""`with resumable(...)`: the re-entry protocol for context managers around checkpoints."""

from __future__ import annotations

import threading

import pytest

from durable import (
    CheckpointException,
    DiskStateStore,
    DurableAstTransformer,
    DurableBackend,
    DurableCompileError,
    PauseForEventException,
    make_durable,
    resumable,
)

CALLS: list[str] = []


class Lease:
    def __enter__(self):
        CALLS.append("enter")
        return "first lease"

    def __exit__(self, *exc_info):
        CALLS.append("exit")


class RenewableLease(Lease):
    def __durable_reenter__(self):
        CALLS.append("renew")
        return "renewed lease"


@make_durable
async def hold(lease):
    with resumable(lease) as held:
        raise PauseForEventException("go")
        CALLS.append(held)
    return "released"


@pytest.fixture(autouse=True)
def clear():
    CALLS.clear()


async def run_to_end(tmp_path, lease):
    store = DiskStateStore(tmp_path)
    with pytest.raises(PauseForEventException):
        await hold(lease, orchestration_backend=DurableBackend(store), instance_id="h")
    backend = DurableBackend(store)
    backend.publish_event("h", "go")
    return await hold(lease, orchestration_backend=backend, instance_id="h")


async def test_resuming_calls_durable_reenter_and_rebinds_the_as_target(tmp_path):
    assert await run_to_end(tmp_path, RenewableLease()) == "released"
    assert CALLS == ["enter", "renew", "renewed lease", "exit"]


async def test_without_durable_reenter_the_manager_is_entered_again(tmp_path):
    assert await run_to_end(tmp_path, Lease()) == "released"
    assert CALLS == ["enter", "enter", "first lease", "exit"]


async def test_exit_does_not_run_when_the_run_stops_inside_the_block(tmp_path):
    with pytest.raises(PauseForEventException):
        await hold(Lease(), orchestration_backend=DurableBackend(DiskStateStore(tmp_path)))
    assert CALLS == ["enter"]


def test_with_block_holding_a_checkpoint_without_resumable_is_a_compile_error_with_a_hint():
    with pytest.raises(DurableCompileError) as caught:
        DurableAstTransformer().transform(
            "async def f(lock):\n    with lock:\n        raise PauseForEventException('e')\n"
        )
    (diagnostic,) = caught.value.diagnostics
    assert diagnostic.code == "DUR104"
    assert "durable.resumable(manager)" in diagnostic.hint


class Unpicklable(Lease):
    def __init__(self):
        self.lock = threading.Lock()


@make_durable
async def hold_unpicklable():
    with resumable(Unpicklable()):
        raise PauseForEventException("go")


async def test_unpicklable_manager_is_named_in_the_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointException, match="the context manager of the 'with' at line"):
        await hold_unpicklable(orchestration_backend=DurableBackend(DiskStateStore(tmp_path)))


def test_resumable_refuses_what_is_not_a_context_manager():
    with pytest.raises(TypeError, match="needs a context manager"):
        resumable(42)
