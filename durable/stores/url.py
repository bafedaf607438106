"""Store URLs: ``memory://`` and ``file:///path/to/dir`` select a store by name."""

from __future__ import annotations

from urllib.parse import unquote, urlparse

from .base import StateStore
from .disk import DiskStateStore
from .memory import InMemoryStateStore

SUPPORTED = "memory:// or file:///path/to/directory"


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
    raise ValueError(f"unsupported store URL {url!r}; this version supports {SUPPORTED}")
