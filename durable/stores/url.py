"""Store URLs: ``memory://``, ``file:///path/to/dir`` and ``sqlite:///path.db`` select a store.

SQLite URLs follow SQLAlchemy: after ``sqlite://`` comes an empty host and then the path, so
``sqlite:///app.db`` is ``app.db`` relative to the working directory and
``sqlite:////var/lib/app.db`` is the absolute ``/var/lib/app.db``. Percent-escapes are decoded
(``%20`` is a space); a host, a query, a fragment or ``:memory:`` is refused.
"""

from __future__ import annotations

import os
from urllib.parse import unquote, urlparse

from .base import StateStore
from .disk import DiskStateStore
from .memory import InMemoryStateStore
from .sqlite import SQLiteStateStore

SUPPORTED = (
    "memory:// or file:///path/to/directory or sqlite:///relative/path.db or "
    "sqlite:////absolute/path.db"
)


def store_from_url(url: str) -> StateStore:
    """The store a URL names, or `ValueError` listing the forms this version supports."""
    scheme, path = _location(url)
    if scheme == "memory":
        return InMemoryStateStore()
    if scheme == "file":
        return DiskStateStore(path)
    return SQLiteStateStore(path)


def missing_store(url: str) -> str | None:
    """What is missing when the disk or SQLite store `url` names does not exist (such as
    "the file /srv/app.db"), else None: it exists, it is ``memory://``, or the URL is
    malformed (`store_from_url` says how). Nothing is created."""
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
    raise ValueError(f"unsupported store URL {url!r}; this version supports {SUPPORTED}")


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
