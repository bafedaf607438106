"""What the command-line and worker tests share: no key or store from the environment, and
an existing store of each kind the command line opens by URL."""

from __future__ import annotations

import pytest

from durable import DiskStateStore, DurableBackend, SQLiteStateStore


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in ("DURABLE_STORE", "DURABLE_SECRET_KEY", "DURABLE_VERIFY_KEYS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["file", "sqlite"])
def stored(request, tmp_path):
    """(the store's URL, a backend over it) for an existing store of each kind."""
    if request.param == "file":
        url, store = f"file://{tmp_path / 'store'}", DiskStateStore(tmp_path / "store")
    else:
        url, store = f"sqlite:///{tmp_path / 'store.db'}", SQLiteStateStore(tmp_path / "store.db")
    yield url, DurableBackend(store)
    store.close()


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
