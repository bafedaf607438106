"""What a type checker sees of the public API (`mypy --strict`, run by tests/test_typing.py).

Never run: each `assert_type` states the type a checker must infer for a use of `durable`.
"""

from __future__ import annotations

from typing import Any, TypedDict, assert_type

import durable
from durable import (
    DurableBackend,
    InMemoryStateStore,
    InstanceHandle,
    OrchestrationBackend,
    durable_execute,
    make_durable,
    sleep,
    step,
    wait_for_event,
)


class Approval(TypedDict):
    by: str


@make_durable
async def label(count: int, name: str) -> str:
    return f"{name}-{count}"


@make_durable(on_code_change="fail")
async def total(values: list[int]) -> int:
    return sum(values)


async def _plain(count: int, name: str) -> str:
    return name * count


compiled = make_durable(_plain)


@step
def charge(order: str, amount: float) -> str:
    return f"receipt-{order}-{amount}"


@step
async def fetch(url: str) -> bytes:
    return url.encode()


@step(retry=durable.RetryPolicy(max_attempts=3), in_thread=True)
def reserve(item: str) -> int:
    return len(item)


def add(left: int, right: int) -> int:
    return left + right


async def parent(backend: OrchestrationBackend) -> None:
    assert_type(await label(1, "a"), str)
    assert_type(await total([1, 2]), int)
    assert_type(await compiled(2, "b"), str)
    assert_type(await label.using(backend, instance_id="label-1")(1, "a"), str)
    assert_type(await label.using(instance_id="label-2")(count=1, name="a"), str)
    assert_type(await label.using(backend)(1, "a"), str)
    assert_type(await charge("order-7", 12.5), str)
    assert_type(await fetch("https://example.invalid"), bytes)
    assert_type(await reserve("book"), int)
    assert_type(await durable_execute(add, 1, 2), int)
    assert_type(await durable_execute(fetch, "x"), bytes)
    assert_type(await durable_execute(_plain, 1, "x"), str)
    assert_type(await wait_for_event("approve"), Any)
    assert_type(await wait_for_event("approve", type=Approval), Approval)
    assert_type(await wait_for_event("approve", 30.0, type=dict), dict[Any, Any])
    assert_type(await sleep(1.0), None)


async def handles() -> None:
    backend = DurableBackend(InMemoryStateStore())
    handle = await label.start(1, "a", instance_id="label-3", orchestration_backend=backend)
    assert_type(handle, InstanceHandle[str])
    assert_type(await handle.result(timeout=5), str)
    assert_type(await label.handle("label-3", orchestration_backend=backend).result(), str)
    assert_type(handle.status(), str | None)
    assert_type(label.key, str)
    assert_type(durable.default_backend(), DurableBackend)


async def misuses(backend: OrchestrationBackend) -> None:
    await label(1)  # type: ignore[call-arg]
    await label("a", 1)  # type: ignore[arg-type]
    await label.using(backend, instance_id="x")(1, 2)  # type: ignore[arg-type]
    await charge("order-7")  # type: ignore[call-arg]
    # The keyword form runs (see tests/runtime/test_make_durable.py) but is not checked:
    await label(1, "a", instance_id="x")  # type: ignore[call-arg]
