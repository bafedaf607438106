"""What every test may use: a real PostgreSQL server, started once per test session when a
test first asks for it (`tests.postgres_server`), and a fresh schema of it per test."""

from __future__ import annotations

import itertools
import os

import pytest

from tests.postgres_server import running_server

_schemas = itertools.count(1)


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
