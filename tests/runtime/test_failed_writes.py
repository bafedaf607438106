"""A failed store write reaches the caller as itself, and the instance stays at its last good
write: freed, the store resumes it with every effect once. On a real 1 MiB tmpfs filled up
mid-run when the tests may mount one (as root), else on stores that refuse writes alike."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    InMemoryStateStore,
    NotApplied,
    PauseForEventException,
    SQLiteStateStore,
    make_durable,
    step,
    wait_for_event,
)
from durable.stores import disk

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


# -- a real small disk that fills up mid-run ----------------------------------------------------
class SmallDisk:
    """A 1 MiB tmpfs mounted at `path` (as root), which `fill` fills to the last page and
    `free` empties again. Where mounting is not permitted, the stores of `store` refuse
    their writes while `full` instead, with the errors a full disk gives them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.full = False
        self.mounted = _mount_tmpfs(path)
        self._fillers = [path / "most-of-it", path / "filler"]

    def store(self, kind: str):
        if kind == "disk":
            if self.mounted:
                # A leased disk log reserves space past its records, so appends need none;
                # leave less than that free, so that its appends meet the full disk.
                _fill(self._fillers[0])
                _give_back(self._fillers[0], disk._RESERVE // 2)
                return DiskStateStore(self.path / "store")
            return _FullDiskStateStore(self.path / "store", self)
        if self.mounted:
            return SQLiteStateStore(self.path / "store.db")
        return _FullSQLiteStateStore(self.path / "store.db", self)

    def fill(self) -> None:
        self.full = True
        if self.mounted:
            _fill(self._fillers[1])

    def free(self) -> None:
        self.full = False
        for filler in self._fillers:
            filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted and subprocess.run(["umount", str(self.path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], check=True)


def _mount_tmpfs(path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    mount = ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)]
    return subprocess.run(mount, capture_output=True).returncode == 0


def _fill(path: Path) -> None:
    """Write zeros to `path` until the file system has no page left."""
    with open(path, "ab", buffering=0) as filler:
        for size in (64 << 10, 4 << 10):
            while True:
                try:
                    filler.write(bytes(size))
                except OSError as error:
                    if error.errno != errno.ENOSPC:
                        raise
                    break


def _give_back(path: Path, size: int) -> None:
    os.truncate(path, os.path.getsize(path) - size)


class _FullDiskStateStore(DiskStateStore):
    def __init__(self, path: Path, small_disk: SmallDisk) -> None:
        super().__init__(path)
        self._disk = small_disk

    def append_record(self, instance_id, record, summary=None):
        if self._disk.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().append_record(instance_id, record, summary)

    def replace_records(self, instance_id, records, summary=None):
        if self._disk.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().replace_records(instance_id, records, summary)


class _FullSQLiteStateStore(SQLiteStateStore):
    def __init__(self, path: Path, small_disk: SmallDisk) -> None:
        super().__init__(path)
        self._disk = small_disk

    def append_record(self, instance_id, record, summary=None):
        if self._disk.full:
            raise _sqlite_full()
        return super().append_record(instance_id, record, summary)

    def replace_records(self, instance_id, records, summary=None):
        if self._disk.full:
            raise _sqlite_full()
        return super().replace_records(instance_id, records, summary)


def _sqlite_full() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = sqlite3.SQLITE_FULL
    return error


@pytest.fixture
def small_disk(tmp_path):
    (tmp_path / "small").mkdir()
    small = SmallDisk(tmp_path / "small")
    try:
        yield small
    finally:
        AFTER_CHARGE.clear()
        small.unmount()


#: amount -> what to do once that amount is charged (and recorded in the ledger).
AFTER_CHARGE: dict[int, Any] = {}


def _ledger_lines(ledger: str) -> list[str]:
    try:
        return Path(ledger).read_text().splitlines()
    except FileNotFoundError:
        return []


def _receipt(order: str, amount: int) -> str:
    # Bigger than a page, so that every write of a result needs new space.
    return f"receipt {order} {amount} " + "." * 5000


def ledger_charged(ledger: str, order: str, amount: int) -> str:
    if f"{order} {amount}" in _ledger_lines(ledger):
        return _receipt(order, amount)
    raise NotApplied()


@step(reconciler=ledger_charged)
def ledger_charge(ledger: str, order: str, amount: int) -> str:
    with open(ledger, "a") as lines:
        lines.write(f"{order} {amount}\n")
    after = AFTER_CHARGE.get(amount)
    if after is not None:
        after()
    return _receipt(order, amount)


@make_durable
async def ledger_checkout(ledger: str, order: str) -> list:
    receipts = [await ledger_charge(ledger, order, amount) for amount in (10, 20, 30, 40, 50)]
    return [receipt.split(" .")[0] for receipt in receipts]


def _fills_at(small: SmallDisk, store, amount: int) -> dict:
    """Fill the disk right after `amount` is charged; returns where the state is read just
    before that (the last good write, filled in when it happens)."""
    last_good: dict = {}

    def fill() -> None:
        last_good.update(DurableBackend(store).read_state("c1"))
        small.fill()

    AFTER_CHARGE[amount] = fill
    return last_good


def _is_disk_full(error: BaseException) -> bool:
    if isinstance(error, sqlite3.OperationalError):
        return error.sqlite_errorcode == sqlite3.SQLITE_FULL  # SQLite's own word for ENOSPC
    return isinstance(error, OSError) and error.errno == errno.ENOSPC


@pytest.mark.parametrize("kind", ["disk", "sqlite"])
async def test_a_disk_that_fills_up_mid_run_reaches_the_caller_as_itself(
    small_disk, kind, tmp_path
):
    store = small_disk.store(kind)
    ledger = str(tmp_path / "ledger")  # outside the small disk
    last_good = _fills_at(small_disk, store, 30)
    with pytest.raises((OSError, sqlite3.OperationalError)) as raised:
        await ledger_checkout(
            ledger, "o1", orchestration_backend=DurableBackend(store), instance_id="c1"
        )
    assert _is_disk_full(raised.value), raised.value
    assert any("instance 'c1' stays at its last good write" in n for n in raised.value.__notes__)
    store.close()
    # Read by a store opened afresh: the last good write, and nothing of the failed one.
    reopened = type(store)(store.path) if small_disk.mounted else small_disk.store(kind)
    assert DurableBackend(reopened).read_state("c1") == last_good
    assert last_good["status"] == "running"
    reopened.close()


@pytest.mark.parametrize("kind", ["disk", "sqlite"])
async def test_freed_the_small_disk_resumes_the_instance_with_every_effect_once(
    small_disk, kind, tmp_path
):
    store = small_disk.store(kind)
    ledger = str(tmp_path / "ledger")
    _fills_at(small_disk, store, 30)
    with pytest.raises((OSError, sqlite3.OperationalError)):
        await ledger_checkout(
            ledger, "o1", orchestration_backend=DurableBackend(store), instance_id="c1"
        )
    store.close()
    small_disk.free()
    store = type(store)(store.path) if small_disk.mounted else small_disk.store(kind)
    backend = DurableBackend(store)
    assert await ledger_checkout(ledger, "o1", orchestration_backend=backend, instance_id="c1") == [
        f"receipt o1 {amount}" for amount in (10, 20, 30, 40, 50)
    ]
    assert _ledger_lines(ledger) == [f"o1 {amount}" for amount in (10, 20, 30, 40, 50)]
    store.close()


# -- reads the runtime makes: the store's failure, never the workflow's ------------------------
class FlakyReads(InMemoryStateStore):
    """Its reads of records or events fail while `down` (a server restarting)."""

    def __init__(self) -> None:
        super().__init__()
        self.down: set[str] = set()

    def read_records(self, instance_id):
        if "records" in self.down:
            raise ConnectionError("the server is restarting")
        return super().read_records(instance_id)

    def read_events(self, instance_id):
        if "events" in self.down:
            raise ConnectionError("the server is restarting")
        return super().read_events(instance_id)


@make_durable
async def approve_then_charge(order: str) -> list:
    receipts = [await charge(order, 10)]
    approver = await wait_for_event("approve")
    receipts.append(await charge(order, 20))
    return [*receipts, approver]


@pytest.mark.parametrize("down", ["records", "events"])
async def test_a_failed_read_when_a_run_starts_leaves_the_instance_as_it_was(down):
    CHARGES.clear()
    store = FlakyReads()
    backend = DurableBackend(store)
    with pytest.raises(PauseForEventException):
        await approve_then_charge("o1", orchestration_backend=backend, instance_id="a1")
    backend.publish_event("a1", "approve", "ada")
    store.down.add(down)
    with pytest.raises(ConnectionError) as raised:
        await approve_then_charge("o1", orchestration_backend=backend, instance_id="a1")
    assert getattr(raised.value, "durable_write_failed", False)  # a worker retries later
    store.down.clear()
    assert backend.read_state("a1")["status"] == "waiting"
    result = await approve_then_charge("o1", orchestration_backend=backend, instance_id="a1")
    assert result == ["receipt o1 10", "receipt o1 20", "ada"]
    assert CHARGES == [("o1", 10), ("o1", 20)]


class FailingEventReads(InMemoryStateStore):
    """Its reads of events fail from the `fail_from`-th one on, while `down`."""

    def __init__(self, fail_from: int) -> None:
        super().__init__()
        self.reads, self.fail_from, self.down = 0, fail_from, True

    def read_events(self, instance_id):
        self.reads += 1
        if self.down and self.reads >= self.fail_from:
            raise ConnectionError("the server is restarting")
        return super().read_events(instance_id)


@make_durable
async def charge_then_wait(order: str) -> list:
    first = await charge(order, 10)
    try:
        approver = await wait_for_event("approve")
    except ConnectionError:
        return ["the workflow caught the store's failure"]
    return [first, approver]


async def test_a_failed_read_at_a_wait_inside_a_run_stops_the_run_and_fails_nothing():
    CHARGES.clear()
    store = FailingEventReads(fail_from=1)
    backend = DurableBackend(store)
    with pytest.raises(ConnectionError) as raised:
        await charge_then_wait("o1", orchestration_backend=backend, instance_id="w1")
    assert getattr(raised.value, "durable_write_failed", False)
    assert backend.read_state("w1")["status"] == "running"  # at its last good write
    store.down = False
    backend.publish_event("w1", "approve", "ada")
    result = await charge_then_wait("o1", orchestration_backend=backend, instance_id="w1")
    assert result == ["receipt o1 10", "ada"]
    assert CHARGES == [("o1", 10)]
