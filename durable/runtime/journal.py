"""The journal: one numbered entry per durable operation of an instance, and its policies.

Entries are plain dicts (``kind``, ``status``, outcome, identity of the call) so that state
written by older versions stays readable; `entry_status` infers what older entries lack.
`JournalPolicy` says how often a snapshot is written and how much history is kept;
`RetryPolicy` says how a failing `durable_execute` call is tried again.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import types
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

PENDING, SUCCEEDED, FAILED = "PENDING", "SUCCEEDED", "FAILED"


class NotApplied(Exception):  # noqa: N818 - a signal, named for what it says
    """Raised by a reconciler to say the interrupted call never took effect: it runs anew."""


def entry_status(entry: dict[str, Any]) -> str:
    """The entry's status; an entry from older state without one is FAILED when it holds an
    exception payload and SUCCEEDED otherwise."""
    status = entry.get("status")
    if status is not None:
        return status
    return FAILED if entry.get("error") is not None else SUCCEEDED


def function_id(func: Any) -> str:
    """``module.qualname`` of the called function (of the underlying function of a method or
    `functools.partial`)."""
    if type(func) is types.FunctionType:
        return f"{func.__module__}.{func.__qualname__}"
    target = func
    while hasattr(target, "func") and not hasattr(target, "__qualname__"):
        target = target.func
    target = getattr(target, "__func__", target)
    module = getattr(target, "__module__", None) or type(target).__module__
    qualname = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{qualname}"


def args_digest(args: tuple[Any, ...], kwargs: dict[Any, Any]) -> str:
    """What tells a call's arguments apart in its journal entry: for positional scalars
    (numbers, strings, bytes, None) of a short repr, that repr itself (exact, and a fifth of
    the cost of a hash; it starts with "(", which no hash does); else `hashed_args_digest`."""
    if not kwargs:
        for value in args:
            if type(value) not in _SCALARS:
                break
        else:
            shown = repr(args)
            if len(shown) <= SHOWN_DIGEST_LIMIT:
                return shown
    return hashed_args_digest(args, kwargs)


def digests_match(stored: Any, digest: str, args: tuple[Any, ...], kwargs: dict[Any, Any]) -> bool:
    """Whether an entry's stored digest is that of these arguments (`digest`, theirs by
    `args_digest`). Entries of versions before shown digests hold the hash of every call."""
    if stored == digest:
        return True
    return digest[:1] == "(" and stored == hashed_args_digest(args, kwargs)


#: The longest repr of arguments kept as their digest; longer ones are hashed.
SHOWN_DIGEST_LIMIT = 64


def hashed_args_digest(args: tuple[Any, ...], kwargs: dict[Any, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the pickled arguments (of their `str` when they
    cannot be pickled)."""
    for value in args:
        if type(value) not in _SCALARS:
            plain = _plain(args) and (not kwargs or _plain(kwargs))
            break
    else:
        plain = not kwargs or _plain(kwargs)
    try:
        if plain:
            # The same bytes cloudpickle writes for plain data, without its per-object hooks.
            data = _dumps((args, kwargs), _PROTOCOL)
        else:
            data = cloudpickle.dumps((args, kwargs))
    except Exception:
        data = str((args, kwargs)).encode("utf-8", "backslashreplace")
    return _sha256(data).hexdigest()[:16]


_SCALARS = frozenset({str, int, float, bool, bytes, type(None)})
_PROTOCOL = cloudpickle.DEFAULT_PROTOCOL
_dumps = pickle.dumps
try:
    # CPython's own SHA-256 (``_sha2`` from 3.12): for the few dozen bytes of a call's
    # arguments it costs a fifth less than OpenSSL's, whose set-up dominates; same digest.
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found]
except ImportError:
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found]
    except ImportError:
        _sha256 = hashlib.sha256


def _plain(value: Any, depth: int = 0) -> bool:
    """Only scalars, tuples, lists and dicts of them (a few levels deep)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth > 3:
        return False
    if kind is tuple or kind is list:
        for item in value:
            if type(item) not in _SCALARS and not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        for key, item in value.items():
            if not (_plain(key, depth + 1) and _plain(item, depth + 1)):
                return False
        return True
    return False


@dataclass(frozen=True)
class JournalPolicy:
    """How an instance writes its journal.

    ``snapshot_every``: a snapshot of the call stack goes with every K-th durable operation
    (1, the default: with each). Between snapshots a write carries only the journal entry,
    and a resumed instance replays the entries written since the last snapshot.
    ``keep_history``: how many settled entries older than the newest snapshot are kept (they
    are not needed to resume; 0 keeps none, so state stays small however long the history).
    ``history_limit``: how many operation summaries the instance's history keeps, newest
    first (each a few dozen bytes, never a result; 0 keeps none).
    """

    snapshot_every: int = 1
    keep_history: int = 0
    history_limit: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.snapshot_every, int) or self.snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {self.snapshot_every!r}")
        if not isinstance(self.history_limit, int) or self.history_limit < 0:
            raise ValueError(f"history_limit must be an int >= 0, got {self.history_limit!r}")
        if not isinstance(self.keep_history, int) or self.keep_history < 0:
            raise ValueError(f"keep_history must be an int >= 0, got {self.keep_history!r}")


DEFAULT_POLICY = JournalPolicy()


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a failing call: attempt ``n`` (from 2) waits ``initial_backoff *
    multiplier ** (n - 2)`` seconds, at most ``max_backoff``, spread by ``jitter`` (a
    fraction: 0.1 is ±10 %). Only exceptions of the types in ``retry_on`` are retried.
    The attempt count and the time of the next attempt are journaled, so a restart
    neither resets the count nor restarts the wait."""

    max_attempts: int = 3
    initial_backoff: float = 1.0
    multiplier: float = 2.0
    max_backoff: float = 60.0
    jitter: float = 0.1
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be an int >= 1, got {self.max_attempts!r}")
        for name in ("initial_backoff", "max_backoff", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, type):
            object.__setattr__(self, "retry_on", (retry_on,))
        elif not all(isinstance(kind, type) for kind in retry_on):
            raise TypeError(
                f"retry_on must be an exception type or a tuple of them, got {retry_on!r}"
            )

    def retries(self, error: BaseException, attempts: int) -> bool:
        """Whether a call that failed with `error` on attempt `attempts` is tried again."""
        return attempts < self.max_attempts and isinstance(error, self.retry_on)

    def backoff(self, attempts: int) -> float:
        """Seconds to wait before the attempt after attempt `attempts`."""
        delay = min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempts - 1))
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, delay)
