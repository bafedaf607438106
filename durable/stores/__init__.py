"""Stores: where durable state lives. One small contract (`base`), one module per store."""

from .base import StateStore
from .disk import DiskStateStore
from .memory import InMemoryStateStore
from .postgres import PostgresStateStore
from .sqlite import SQLiteStateStore
from .url import store_from_url

__all__ = [
    "DiskStateStore",
    "InMemoryStateStore",
    "PostgresStateStore",
    "SQLiteStateStore",
    "StateStore",
    "store_from_url",
]
