"""Store URLs: ``memory://``, ``file:///path/to/dir`` and ``sqlite:///path.db`` select a store.

SQLite URLs follow SQLAlchemy: after ``sqlite://`` comes an empty host and then the path, so
``sqlite:///app.db`` is ``app.db`` relative to the working directory and
``sqlite:////var/lib/app.db`` is the absolute ``/var/lib/app.db``. Percent-escapes are decoded
(``%20`` is a space); a host, a query, a fragment or ``:memory:`` is refused.
"""

from __future__ import annotations

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
    parsed = urlparse(url)
    if parsed.scheme == "memory":
        return InMemoryStateStore()
    if parsed.scheme == "file":
        path = unquote(parsed.netloc + parsed.path)
        if not path:
            raise ValueError(f"store URL {url!r} names no directory; write file:///path/to/dir")
        return DiskStateStore(path)
    if parsed.scheme == "sqlite":
        return SQLiteStateStore(_sqlite_path(url))
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
