"""Large strings and bytes of an instance's state, stored once and referenced by key.

A snapshot of a large state (an agent's conversation) pickles each string or bytes object of
at least `MIN_SIZE` as a reference to a *blob*; a blob is written with the first snapshot
that holds its object and never again while the object stays in the state, so a step writes
what it added, not the whole conversation. Strings and bytes cannot change, so the same
object is the same blob; identity and sharing are kept as the pickle keeps them.
"""

from __future__ import annotations

import os
from typing import Any

#: Strings and bytes this long (characters or bytes) or longer go out of line.
MIN_SIZE = 4096
#: A run keeps its snapshots inline until one weighs this much; then it goes out of line.
LARGE_STATE = 64 << 10

#: ``DURABLE_OUT_OF_LINE=off`` keeps every snapshot whole (inline); ``always`` takes strings
#: and bytes of 16 or more out of line from an instance's first snapshot on (the tests run
#: the corpora both ways).
MODE = os.environ.get("DURABLE_OUT_OF_LINE", "").strip().lower()
if MODE == "always":
    MIN_SIZE, LARGE_STATE = 16, 0
elif MODE not in ("", "off", "on"):
    raise ValueError(f"DURABLE_OUT_OF_LINE must be on, off or always, not {MODE!r}")
#: Whether large states go out of line at all.
ENABLED = MODE != "off"

#: A blob is (kind, the object): a str, or bytes.
_TEXT, _BYTES = "s", "b"
Blob = tuple[str, str | bytes]


class OutOfLine:
    """The blobs of one instance as one run knows them: which object each key holds, which
    keys the store has, which the state refers to now, and which are still to be written."""

    __slots__ = (
        "_keys",
        "_objects",
        "_stored",
        "_pending",
        "_sizes",
        "_next_key",
        "_unloaded",
        "new",
        "referenced",
        "live",
    )

    def __init__(self, stored: dict[int, Blob] | None = None) -> None:
        #: id(object) -> (object, key): the object is held, so its id is not reused.
        self._keys: dict[int, tuple[Any, int]] = {}
        #: key -> object, for the blobs of objects this run has seen.
        self._objects: dict[int, Any] = {}
        #: key -> size of the blobs the store holds, as far as this run knows (characters of
        #: a text, bytes of bytes: what a record holds of it, near enough).
        self._stored: dict[int, int] = {key: len(data) for key, (_, data) in (stored or {}).items()}
        #: id(write) -> (the write, key -> size of the blobs it holds), for the writes
        #: that have not committed yet.
        self._pending: dict[int, tuple[Any, dict[int, int]]] = {}
        #: key -> size of every blob this run knows.
        self._sizes: dict[int, int] = dict(self._stored)
        #: key -> blob, for the stored blobs whose object this run has not made yet.
        self._unloaded: dict[int, Blob] = dict(stored or {})
        self._next_key = max(self._stored, default=0) + 1
        #: key -> blob, made by the pickles of the run and not written yet (`take_new`).
        self.new: dict[int, Blob] = {}
        #: Keys the pickle being made refers to (since `begin`).
        self.referenced: set[int] = set()
        #: Keys the state refers to as of the last write (`retain`).
        self.live: set[int] = set(self._stored)

    def begin(self) -> None:
        """A pickle starts: `referenced` will hold the keys it refers to."""
        self.referenced = set()

    def key_of(self, value: str | bytes) -> int:
        """The key of the blob holding `value`, made (and added to `new`) the first time."""
        known = self._keys.get(id(value))
        if known is not None and known[0] is value:
            key = known[1]
        else:
            key = self._next_key
            self._next_key += 1
            self._keys[id(value)] = (value, key)
            self._objects[key] = value
        if key not in self._stored and key not in self.new:
            blob = self.new[key] = _blob_of(value)
            self._sizes[key] = len(blob[1])
        self.referenced.add(key)
        return key

    def take_new(self) -> dict[int, Blob]:
        """The blobs made since the last write, for the write being made."""
        new, self.new = self.new, {}
        return new

    def retain(self, live: set[int]) -> None:
        """The state refers to `live` now (its snapshot and its journal entries): forget the
        objects of other keys (their blobs are garbage in the store, dropped at its next
        compaction)."""
        self.live = live
        for key in [key for key in self._objects if key not in live]:
            del self._keys[id(self._objects.pop(key))]
            self._sizes.pop(key, None)
        for key in [key for key in self._unloaded if key not in live]:
            del self._unloaded[key]

    def live_bytes(self) -> int:
        """Bytes of the blobs the state refers to: what a whole state holds of them."""
        sizes = self._sizes
        return sum(sizes.get(key, 0) for key in self.live)

    def written(self, new: dict[int, Blob], write: Any = None) -> None:
        """`new` blobs went with a write: stored now, or, when the write is still to commit
        (`write`, an awaitable), once it has (`settled`) — until then every pickle writes
        them again, so that no write refers to a blob that only a write that may yet fail
        holds."""
        sizes = {key: len(data) for key, (_, data) in new.items()}
        if write is None:
            self._stored.update(sizes)
        else:
            self._pending[id(write)] = (write, sizes)

    def compacted(self, write: Any = None) -> None:
        """The store's log was rewritten holding the blobs the state refers to and no others
        (by `write`, when it is still to commit)."""
        sizes = dict(self._stored)
        for _, pending in self._pending.values():
            sizes.update(pending)
        live = {key: sizes.get(key, 0) for key in self.live}
        self._pending.clear()
        if write is None:
            self._stored = live
        else:
            self._stored = {}
            self._pending[id(write)] = (write, live)

    def settled(self, write: Any) -> None:
        """`write` has committed: the blobs it held are stored."""
        pending = self._pending.pop(id(write), None)
        if pending is not None:
            self._stored.update(pending[1])

    def object_of(self, key: int) -> str | bytes | None:
        """The object of blob `key`, the same one for every reference to it (the key is
        `referenced`); None for a key this run does not know."""
        self.referenced.add(key)
        value = self._objects.get(key)
        if value is None:
            blob = self._unloaded.pop(key, None)
            if blob is None:
                return None
            value = object_of(blob)
            self._objects[key] = value
            self._keys[id(value)] = (value, key)
        return value

    def live_blobs(self) -> dict[int, Blob]:
        """The blobs the state refers to, to write with the whole state."""
        blobs = {}
        for key in sorted(self.live):
            value = self._objects.get(key)
            blobs[key] = _blob_of(value) if value is not None else self._unloaded[key]
        return blobs

    def garbage_bytes(self) -> int:
        """Bytes of the stored blobs the state no longer refers to."""
        live = self.live
        return sum(size for key, size in self._stored.items() if key not in live)


def _blob_of(value: str | bytes) -> Blob:
    # The object itself: the record's pickle writes it once (a str as UTF-8, in C), and
    # unpickling the record makes the object again, with no copy of ours either way.
    return (_TEXT if type(value) is str else _BYTES), value


def object_of(blob: Blob) -> str | bytes:
    """The string or bytes `blob` holds (a text blob may hold its UTF-8 instead)."""
    kind, data = blob
    if kind == _TEXT:
        return data if type(data) is str else bytes(data).decode("utf-8", "surrogatepass")
    return data if type(data) is bytes else bytes(data)


def goes_out_of_line(value: Any) -> bool:
    kind = type(value)
    return (kind is str or kind is bytes) and len(value) >= MIN_SIZE


class Stored:
    """A value kept out of the snapshot on purpose: the snapshot saves how to load it again
    — `load` (a function found by its module and name) and `arguments` — never the value.

    ``doc = Stored(read_document, key)`` after a step stored the document under `key`; use
    ``doc.value``, loaded at first use, again after a resume. Give it what stays the same
    to load again (a path, an object-store key, a row id), not the data itself.
    """

    __slots__ = ("load", "arguments", "_value", "_loaded")

    def __init__(self, load: Any, *arguments: Any) -> None:
        if not callable(load):
            raise TypeError(f"Stored needs the function that loads the value, got {load!r}")
        self.load: Any = load
        self.arguments: tuple[Any, ...] = arguments
        self._value: Any = None
        self._loaded = False

    @property
    def value(self) -> Any:
        """The value, loaded with ``load(*arguments)`` at first use in this run."""
        if not self._loaded:
            self._value, self._loaded = self.load(*self.arguments), True
        return self._value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Stored, (self.load, *self.arguments))

    def __repr__(self) -> str:
        name = getattr(self.load, "__qualname__", repr(self.load))
        shown = ", ".join(map(repr, self.arguments))
        return f"Stored({name}, {shown})" + ("" if self._loaded else " (not loaded)")
