"""A failed store write reaches the caller as itself, and the instance stays at its last good
write: freed, the store resumes it with every effect once."""

from __future__ import annotations

import errno

import pytest

from durable import DurableBackend, InMemoryStateStore, NotApplied, make_durable, step

CHARGES: list = []


class FullDisk(InMemoryStateStore):
    """Refuses writes with ENOSPC from write number `full_from` on, while `full`."""

    def __init__(self, full_from: int) -> None:
        super().__init__()
        self.writes = 0
        self.full_from = full_from
        self.full = True

    def append_record(self, instance_id, record, summary=None):
        self.writes += 1
        if self.full and self.writes >= self.full_from:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().append_record(instance_id, record, summary)


def charged(order: str, amount: int) -> str:
    if (order, amount) in CHARGES:
        return f"receipt {order} {amount}"
    raise NotApplied()


@step(reconciler=charged)
def charge(order: str, amount: int) -> str:
    CHARGES.append((order, amount))
    return f"receipt {order} {amount}"


@make_durable
async def checkout(order: str) -> list:
    return [await charge(order, amount) for amount in (10, 20, 30)]


@pytest.mark.parametrize("full_from", range(2, 9))
async def test_a_write_that_fails_reaches_the_caller_as_itself(full_from):
    CHARGES.clear()
    store = FullDisk(full_from)
    with pytest.raises(OSError) as raised:
        await checkout("o1", orchestration_backend=DurableBackend(store), instance_id="c1")
    assert raised.value.errno == errno.ENOSPC
    assert any("instance 'c1' stays at its last good write" in n for n in raised.value.__notes__)


@pytest.mark.parametrize("full_from", range(2, 9))
async def test_freed_the_store_resumes_the_instance_with_every_effect_once(full_from):
    CHARGES.clear()
    store = FullDisk(full_from)
    with pytest.raises(OSError):
        await checkout("o1", orchestration_backend=DurableBackend(store), instance_id="c1")
    store.full = False
    assert await checkout("o1", orchestration_backend=DurableBackend(store), instance_id="c1") == [
        "receipt o1 10",
        "receipt o1 20",
        "receipt o1 30",
    ]
    assert CHARGES == [("o1", 10), ("o1", 20), ("o1", 30)]
