"""What every test may use: a real PostgreSQL server, started once per test session when a
test first asks for it (`tests.postgres_server`), and a fresh schema of it per test; and
temporary files in memory (tmpfs) where the machine has it."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.postgres_server import running_server

_schemas = itertools.count(1)

#: Where the suite's temporary files go: a directory made under this, for the whole run.
#: Real files on a real file system either way; in memory, a store's sync costs nothing,
#: which halves the time of the tests that crash a program at every write (a process killed
#: leaves the page cache as it is, so what they check is the same). Set the variable to a
#: directory on a disk to run the suite there.
TEMPORARY_ROOT = os.environ.get("DURABLE_TEST_TMPDIR", "/dev/shm")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """In the first process of a run (not an xdist worker, which inherits it): one fresh
    directory for `tmp_path` and for `tempfile` here and in every process started."""
    if hasattr(config, "workerinput") or not os.access(TEMPORARY_ROOT, os.W_OK):
        return
    root = Path(tempfile.mkdtemp(prefix="durable-tests-", dir=TEMPORARY_ROOT))
    # Others may pass through (not list it): the PostgreSQL server, run as its own user,
    # keeps its data in a directory of its own under it.
    root.chmod(0o711)
    config._durable_temporary_root = root  # type: ignore[attr-defined]
    if config.option.basetemp is None:
        config.option.basetemp = str(root / "pytest")
    os.environ["TMPDIR"] = str(root)
    tempfile.tempdir = None  # read TMPDIR again


def pytest_unconfigure(config: pytest.Config) -> None:
    root = getattr(config, "_durable_temporary_root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_dsn():
    """The conninfo of the tests' PostgreSQL server."""
    with running_server() as dsn:
        yield dsn


@pytest.fixture
def postgres_schema(postgres_dsn):
    """A schema no other test uses (the store creates it on first use)."""
    return f"test_{os.getpid()}_{next(_schemas)}"


@pytest.fixture
def postgres_url(postgres_dsn, postgres_schema):
    """A ``postgresql://`` store URL of a fresh schema of the tests' server."""
    from psycopg.conninfo import conninfo_to_dict

    parts = conninfo_to_dict(postgres_dsn)
    password = f":{parts['password']}" if parts.get("password") else ""
    return (
        f"postgresql://{parts.get('user', '')}{password}@{parts.get('host', 'localhost')}:"
        f"{parts.get('port', 5432)}/{parts.get('dbname', 'postgres')}?schema={postgres_schema}"
    )
