"""What the command-line and worker tests share: no key or store from the environment, and
an existing store of each kind the command line opens by URL."""

from __future__ import annotations

import time

import pytest

from durable import DiskStateStore, DurableBackend, SQLiteStateStore
from durable.stores.url import store_from_url


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in ("DURABLE_STORE", "DURABLE_SECRET_KEY", "DURABLE_VERIFY_KEYS"):
        monkeypatch.delenv(name, raising=False)


class Stored(tuple):
    """(the store's URL, a backend over it), and `reopen`."""

    def reopen(self) -> DurableBackend:
        """A fresh backend over the store, as the next process would open it (its store is
        closed after the test)."""
        store = store_from_url(self[0])
        self.opened.append(store)
        return DurableBackend(store)

    def outlive_killed_leases(self) -> None:
        """Wait until the leases of a process killed with them have ended: at once on disk
        and SQLite (the kernel ends them), after their length on PostgreSQL."""
        time.sleep(self.lease_seconds)


@pytest.fixture(params=["file", "sqlite", "postgres"])
def stored(request, tmp_path):
    """(the store's URL, a backend over it) for an existing store of each kind."""
    if request.param == "file":
        url, store = f"file://{tmp_path / 'store'}", DiskStateStore(tmp_path / "store")
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url") + "&lease_seconds=1"
        store = store_from_url(url)
    else:
        url, store = f"sqlite:///{tmp_path / 'store.db'}", SQLiteStateStore(tmp_path / "store.db")
    stored = Stored((url, DurableBackend(store)))
    stored.opened = [store]
    stored.lease_seconds = getattr(store, "lease_seconds", 0.0) * 1.2
    yield stored
    for opened in stored.opened:
        close = getattr(opened, "close", None)
        if close is not None:
            close()


@pytest.fixture
def ledger(tmp_path):
    """A ledger file for the functions of `tests.worker.operated`."""
    return str(tmp_path / "ledger")


@pytest.fixture(autouse=True)
def charges_go_through():
    from . import operated

    operated.DECLINE["on"] = False
    yield
    operated.DECLINE["on"] = False
