"""Store URLs: ``memory://``, ``file:///path/to/dir``, ``sqlite:///path.db`` and
``postgresql://user:password@host:5432/database`` select a store.

SQLite URLs follow SQLAlchemy: after ``sqlite://`` comes an empty host and then the path, so
``sqlite:///app.db`` is ``app.db`` relative to the working directory and
``sqlite:////var/lib/app.db`` is the absolute ``/var/lib/app.db``. Percent-escapes are decoded
(``%20`` is a space); a host, a query, a fragment or ``:memory:`` is refused.

PostgreSQL URLs are libpq's (``postgres://`` too), handed to psycopg as they are, but for two
parameters of ours: ``?schema=NAME`` picks the schema the store keeps its tables in (default
``durable``) and ``lease_seconds=S`` how long a runner's lease outlives its last renewal
(default 30). Other query parameters are libpq's (``sslmode=require``, ``connect_timeout=5``).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlparse

from .base import StateStore
from .disk import DiskStateStore
from .memory import InMemoryStateStore
from .postgres import DEFAULT_SCHEMA, PostgresStateStore, schema_missing
from .sqlite import SQLiteStateStore

SUPPORTED = (
    "memory:// or file:///path/to/directory or sqlite:///relative/path.db or "
    "sqlite:////absolute/path.db or postgresql://user:password@host:5432/database"
)


def store_from_url(url: str) -> StateStore:
    """The store a URL names, or `ValueError` listing the forms this version supports."""
    scheme, path = _location(url)
    if scheme == "memory":
        return InMemoryStateStore()
    if scheme == "file":
        return DiskStateStore(path)
    if scheme == "postgresql":
        dsn, options = postgres_location(url)
        return PostgresStateStore(dsn, **options)
    return SQLiteStateStore(path)


def postgres_location(url: str) -> tuple[str, dict[str, Any]]:
    """The libpq URL of a ``postgresql://`` store URL without our own parameters, and those
    as `PostgresStateStore` keywords: ``schema`` and ``lease_seconds``."""
    parsed = urlparse(url)
    query = parse_qsl(parsed.query, keep_blank_values=True)
    ours: dict[str, Any] = {}
    for key, value in query:
        if key not in _POSTGRES_OPTIONS:
            continue
        if key in ours:
            raise ValueError(f"store URL {without_password(url)!r}: {key} is given twice")
        try:
            ours[key] = _POSTGRES_OPTIONS[key](value)
        except ValueError:
            raise ValueError(
                f"store URL {without_password(url)!r}: {key}={value!r} is not a number of "
                "seconds > 0"
            ) from None
    rest = urlencode([(key, value) for key, value in query if key not in _POSTGRES_OPTIONS])
    return parsed._replace(query=rest).geturl(), {"schema": DEFAULT_SCHEMA, **ours}


def _seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(value)
    return seconds


#: The query parameters of a PostgreSQL store URL that are ours, not libpq's.
_POSTGRES_OPTIONS = {"schema": str, "lease_seconds": _seconds}


def without_password(url: str) -> str:
    """`url` with its password, if any, shown as ``***``."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@")).geturl()


def missing_store(url: str) -> str | None:
    """What is missing when the disk, SQLite or PostgreSQL store `url` names does not exist
    (such as "the file /srv/app.db"), else None: it exists, it is ``memory://``, the URL is
    malformed (`store_from_url` says how) or the server cannot be asked (opening the store
    says why). Nothing is created."""
    try:
        scheme, path = _location(url)
    except ValueError:
        return None
    where = os.path.abspath(path)
    if scheme == "file" and not os.path.isdir(os.path.join(path, "state")):
        # A disk store is a directory holding state/ (DiskStateStore makes it at once).
        if os.path.isdir(path):
            return f"the disk store (no state/ in it) {where}"
        return f"the directory {where}"
    if scheme == "sqlite" and not os.path.exists(path):
        return f"the file {where}"
    if scheme == "postgresql":
        dsn, options = postgres_location(url)
        return schema_missing(dsn, options["schema"])
    return None


def _location(url: str) -> tuple[str, str]:
    """The scheme of `url` and the path it names ("" for memory://); `ValueError` saying
    what is wrong with a URL of no supported form."""
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return "memory", ""
    if parsed.scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        if not path:
            raise ValueError(f"store URL {url!r} names no directory; write file:///path/to/dir")
        return "file", path
    if parsed.scheme == "sqlite":
        return "sqlite", _sqlite_path(url)
    if parsed.scheme in ("postgresql", "postgres"):
        return "postgresql", ""
    raise ValueError(
        f"unsupported store URL {without_password(url)!r}; this version supports {SUPPORTED}"
    )


def _sqlite_path(url: str) -> str:
    parsed = urlparse(url)
    path = unquote(parsed.path[1:]) if parsed.path.startswith("/") else ""
    problem = None
    if not url.lower().startswith("sqlite:///"):
        problem = "a SQLite URL is sqlite:/// and then the path of the file (no host)"
    elif parsed.query or parsed.fragment or url.endswith(("?", "#")):
        problem = "it has a query or a fragment; a SQLite URL is only the path of the file"
    elif not path or path.endswith("/"):
        problem = "it names no database file"
    elif path == ":memory:":
        problem = "an in-memory SQLite store would vanish with the process; use memory://"
    if problem is not None:
        raise ValueError(
            f"store URL {url!r}: {problem}. Write sqlite:///app.db (relative to the working "
            "directory) or sqlite:////var/lib/app.db (absolute)"
        )
    return path
