"""Backends: where instance state and events live, as seen by the runtime.

`OrchestrationBackend` is the three-method contract (`load_state`, `save_state`,
`wait_for_event`) a custom backend implements; `DurableBackend` is the standard one over a
`StateStore`, with a durable inbox whose events are consumed exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import os
import pickle
import socket
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import cloudpickle

from .._errors import (
    CorruptStateError,
    DurableError,
    InstanceBusyError,
    InstanceEndedError,
    StateFormatError,
    StateTooLargeError,
)
from .._ids import validate_instance_id
from ..stores import InMemoryStateStore, StateStore, store_from_url
from ..stores.base import Claim, InstanceSummary
from .history import History
from .operations import CANCEL_EVENT, Event
from .runtime import DurableRuntime, StepWrite, readable_size
from .signing import EMPTY_LOG_END, LogEnd, Seals

#: Version of the bytes `DurableBackend` hands its store (record formats share one series
#: of numbers, the step records' included). Format 7 (with step format 6) is the first
#: whose journal entries may hold shown argument digests (`args_digest`): a version before
#: them refuses it rather than taking such an entry for another call.
RECORD_FORMAT = 7
#: The general record before shown digests, still read (the same layout).
_RECORD_BEFORE_SHOWN_DIGESTS = 2


class OrchestrationBackend(ABC):
    """Where the runtime keeps instance state and finds events. Subclass to plug in storage.

    ``save_state`` must be atomic and durable when it returns; ``wait_for_event`` returns the
    oldest unconsumed event ``event_name`` of the instance (consuming it) or None.
    """

    @abstractmethod
    def load_state(self, instance_id: str) -> dict[str, Any] | None:
        """The state last saved for `instance_id`, or None for an unknown instance."""

    @abstractmethod
    def save_state(self, instance_id: str, state: dict[str, Any]) -> None:
        """Replace the state of `instance_id` atomically and durably."""

    @abstractmethod
    def wait_for_event(self, instance_id: str, event_name: str) -> Event | None:
        """Take the oldest pending event `event_name` of `instance_id`, or return None."""

    def read_state(self, instance_id: str) -> dict[str, Any] | None:
        """The stored state, read to look at it (a status, a result), not to run it."""
        return self.load_state(instance_id)

    def acquire_instance(self, instance_id: str) -> str | None:
        """Become the one runner of `instance_id`: None when granted, else who runs it.
        By default only the runtime's own check applies (one run per instance in a
        process); a backend shared by processes overrides this with a lease."""
        return None

    def release_instance(self, instance_id: str) -> None:  # noqa: B027 - optional hook
        """End the lease `acquire_instance` granted."""

    def cancel_requested(self, instance_id: str, *, take: bool = False) -> Event | None:
        """The cancellation waiting in the inbox of `instance_id`, if any (taken, consumed
        with the next write, when `take`). A backend without an inbox it can read at once
        answers None: its runs are cancelled in their own process only."""
        return None

    def save_changes(
        self,
        instance_id: str,
        changes: dict[str, Any],
        full_state: Callable[[], dict[str, Any]],
    ) -> Awaitable[None] | None:
        """One durable write of the instance. `changes` says what differs from the last write
        (fields set, journal entries added, pruned or cleared, a new snapshot); a backend that
        can store just that overrides this. By default the whole state is saved.

        None means the write is durable now; an awaitable (a store committing writes in
        groups) means it is durable once the awaitable completes, and the runtime awaits it
        before going on."""
        return self.save_state(instance_id, full_state())  # an async one's coroutine: awaited

    def save_step(
        self,
        instance_id: str,
        step: StepWrite,
        full_state: Callable[[], dict[str, Any]],
    ) -> Awaitable[None] | None:
        """One durable write of a settled call with its snapshot, the most common write;
        as `save_changes` of ``step.changes()`` unless a backend stores it more directly."""
        return self.save_changes(instance_id, step.changes(), full_state)


#: The largest state a checkpoint saves unless `DurableBackend(max_state_bytes=...)` says
#: otherwise: a state this large is rewritten at every step, and a store row holds at most
#: about a GB.
DEFAULT_MAX_STATE_BYTES = 256 << 20


class DurableBackend(OrchestrationBackend):
    """The standard backend over a `StateStore` (in memory unless you pass one).

    Each write appends one record of what changed to the instance's log in the store; the
    state is the log folded in order. When the log holds `compact_after` records, or
    `compact_after_bytes` bytes of records, the next write rewrites it as one record (the
    whole state): a compaction costs a few writes where an append costs one, so the bounds
    trade the step's cost against the most a load reads. A write larger than
    `max_state_bytes` (256 MiB unless given) is refused with `StateTooLargeError`, which
    names the largest live values; nothing of it is written.

    With a `secret_key`, every record and event is signed with HMAC-SHA256 under it, and
    nothing is unpickled that does not carry a valid signature: pickled state is code, and
    the key keeps a store that others can write to from running theirs. A record's signature
    binds it to its instance and its place in the instance's history (a chain), and stores
    that keep heads (`StateStore.keeps_heads`) hold a signed head naming the last record, so
    a log cut back to an earlier prefix is refused (docs/security.md says what this does and
    does not protect). `verify_keys` are earlier keys still accepted while records signed
    under them remain. A backend with a key refuses unsigned state, and one without a key
    refuses signed state.

    Events are stored durably by `publish_event` before it returns, kept until consumed, and
    consumed once each, oldest first per name. A consumed event is deleted only after the
    state that records its consumption is saved, so a crash in between neither loses nor
    duplicates it.
    """

    def __new__(cls, store: StateStore | None = None, **options: Any) -> DurableBackend:
        if cls is DurableBackend and getattr(store, "whole_state", False):
            return super().__new__(WholeStateBackend)
        return super().__new__(cls)

    def __init__(
        self,
        store: StateStore | None = None,
        *,
        compact_after: int = 256,
        compact_after_bytes: int = 4 << 20,
        secret_key: bytes | str | None = None,
        verify_keys: Sequence[bytes | str] = (),
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ) -> None:
        for name, bound in (
            ("compact_after", compact_after),
            ("compact_after_bytes", compact_after_bytes),
            ("max_state_bytes", max_state_bytes),
        ):
            if not isinstance(bound, int) or bound < 1:
                raise ValueError(f"{name} must be an int >= 1, got {bound!r}")
        self.store: StateStore = store if store is not None else InMemoryStateStore()
        self._key = _secret_key(secret_key)
        if isinstance(verify_keys, (bytes, str)):
            raise TypeError("verify_keys must be a sequence of keys, not one key")
        if verify_keys and self._key is None:
            raise ValueError("verify_keys are earlier keys of a secret_key; give secret_key too")
        self._seals = Seals(self._key, tuple(_secret_key(key) for key in verify_keys))
        #: Whether records are written with a signed head (a store that keeps heads).
        self._heads = self._key is not None and getattr(self.store, "keeps_heads", False)
        #: instance id -> where its signed history ends, as read or written here.
        self._ends: dict[str, LogEnd] = {}
        #: Instances whose log holds records of the first signed format: the next write
        #: compacts it, signing the whole state in the chained format.
        self._legacy: set[str] = set()
        #: Records an instance's log may hold before a write compacts it into one.
        self.compact_after = compact_after
        #: Bytes of records an instance's log may hold before a write compacts it.
        self.compact_after_bytes = compact_after_bytes
        #: The largest record a write may make (a checkpoint's state, or the whole state
        #: when the log is compacted): beyond it, `StateTooLargeError`. Never more than the
        #: store can hold in one record (its ``max_record_bytes``).
        self.max_state_bytes: int = min(
            max_state_bytes, getattr(self.store, "max_record_bytes", None) or max_state_bytes
        )
        #: instance id -> (records, bytes of records) in its log, as read or written here.
        self._log_sizes: dict[str, tuple[int, int]] = {}
        #: instance id -> the summary its last write handed the store.
        self._summaries: dict[str, tuple[Any, ...]] = {}
        #: instance id -> {event id: digest of its bytes} handed to the running instance and
        #: not yet saved as consumed. The digest guards the deletion after a restart: a store
        #: may reuse the id of a deleted event (disk ids come from the clock).
        self._claimed: dict[str, dict[int, str]] = {}
        #: Who this backend is when it holds a lease.
        self._owner = f"runner {uuid.uuid4().hex[:12]} on {socket.gethostname()}"

    def __repr__(self) -> str:
        return f"DurableBackend({self.store!r})"

    def acquire_instance(self, instance_id: str) -> str | None:
        """The store's lease of `instance_id` for this backend object."""
        return self.store.acquire_lease(instance_id, self._owner)

    def claim_due(
        self, now: float, limit: int, skip: dict[str, tuple[Any, ...] | None] | None = None
    ) -> list[Claim]:
        """Claim due instances for runs through this backend, from a store that claims
        (``PostgresStateStore.claim_due``): the lease of each claim becomes the lease of
        the run that `acquire_instance` starts next, or goes with `release_instance`."""
        return self.store.claim_due(now, limit, self._owner, skip=skip)

    def release_instance(self, instance_id: str) -> None:
        self.store.release_lease(instance_id, self._owner)
        # What a run of it needed (where its log ends, its size, its summary, its claimed
        # events) is read again by the next run: a worker over many parked or finished
        # instances keeps nothing per instance.
        self._forget(instance_id)

    def _forget(self, instance_id: str) -> None:
        for known in (self._ends, self._log_sizes, self._summaries, self._claimed):
            known.pop(instance_id, None)
        self._legacy.discard(instance_id)

    def load_state(self, instance_id: str) -> dict[str, Any] | None:
        """The state to run `instance_id` from: events handed to an earlier run of it and
        not journaled are offered again, and consumed events left in the inbox go."""
        self._claimed[instance_id] = {}
        self._summaries.pop(instance_id, None)
        records, payloads = self._read_log(instance_id)
        if not records:
            self._log_sizes[instance_id] = _EMPTY_LOG
            return None
        state, consumed = self._fold(instance_id, payloads)
        self._log_sizes[instance_id] = (
            len(records),
            sum(map(len, records)) - _blob_bytes(state.get("blobs")),
        )
        if consumed:
            # The write that recorded these may have stopped before deleting them.
            leftovers = [
                event_id
                for event_id, event in self.store.read_events(instance_id)
                if consumed.get(event_id) == _event_digest(event)
            ]
            if leftovers:
                self.store.delete_events(instance_id, leftovers)
        return state

    def compact(self, instance_id: str) -> bool:
        """Rewrite the log of `instance_id` as one record signed with the current key: after
        a key rotation, once every instance is compacted (and the events published under
        earlier keys consumed), the earlier keys can go. False for an unknown instance;
        `InstanceBusyError` while a runner holds it."""
        with self._between_runs(instance_id, "compact"):
            state = self.load_state(instance_id)
            if state is None:
                return False
            unsettled = self._replace(instance_id, state)
            if unsettled is not None:
                raise RuntimeError(
                    "compact was called from a coroutine on a group-committing store; call it "
                    "in a thread (asyncio.to_thread)"
                )
            return True

    def delete_instance(self, instance_id: str) -> bool:
        """Forget `instance_id`: its records, head and pending events. False for an unknown
        instance; `InstanceBusyError` while a runner holds it (an instance is deleted
        between runs, never under one)."""
        with self._between_runs(instance_id, "delete"):
            if not self.store.read_records(instance_id) and not self.store.read_events(instance_id):
                return False
            self.store.delete_instance(instance_id)
            self._forget(instance_id)
            return True

    @contextlib.contextmanager
    def _between_runs(self, instance_id: str, what: str):
        """Hold the lease of `instance_id` for an operator's change (`what`) to it;
        `InstanceBusyError` while a runner holds it."""
        holder = self.acquire_instance(validate_instance_id(instance_id))
        if holder is not None:
            raise InstanceBusyError(
                f"instance {instance_id!r} is being run by another runner ({holder}); {what} "
                "it when it pauses or ends"
            )
        try:
            yield
        finally:
            self.release_instance(instance_id)

    def read_state(
        self, instance_id: str, *, loads: Callable[[bytes], Any] = pickle.loads
    ) -> dict[str, Any] | None:
        """The stored state, to look at; `loads` unpickles each record (a restricted one
        shows state that is not trusted without running it)."""
        records, payloads = self._read_log(instance_id, remember=False)
        return self._fold(instance_id, payloads, loads)[0] if records else None

    def state_at(self, instance_id: str, seq: int) -> dict[str, Any]:
        """The state of `instance_id` as the write that journaled its durable operation
        `seq` with a snapshot left it, from the records its log still holds (those since
        its last compaction); `ValueError` naming the operations it can give otherwise."""
        records, payloads = self._read_log(instance_id, remember=False)
        if not records:
            raise DurableError(f"no instance {instance_id!r} in {self!r}")
        available = []
        for count, data in enumerate(payloads, 1):
            changes = _decode(instance_id, data)
            if (changes.get("set") or {}).get("snapshot") is None:
                continue
            entries = changes.get("entries") or {}
            available += entries
            if seq in entries:
                return self._fold(instance_id, payloads[:count])[0]
        kept = (
            f"holds snapshots at operations {min(available)} to {max(available)}"
            if available
            else "holds no snapshot of an operation"
        )
        raise ValueError(
            f"instance {instance_id!r} keeps no snapshot taken at operation {seq}: its log "
            f"{kept} (older ones are folded into its last compaction; "
            "DurableBackend(compact_after=...) keeps more)"
        )

    def _read_log(
        self, instance_id: str, *, remember: bool = True
    ) -> tuple[list[bytes], list[bytes]]:
        """The records of `instance_id` and their payloads, once their signatures, places and
        the head (read first: it never names more than the records then hold) are checked;
        `CorruptStateError` otherwise, before anything is unpickled."""
        head = self.store.read_head(instance_id) if self._heads else None
        records = self.store.read_records(instance_id)
        log = self._seals.open_log(instance_id, records)
        self._seals.check_head(instance_id, head, log)
        if not remember:  # a look, not a run: nothing to keep for the next write
            return records, log.payloads
        self._ends[instance_id] = log.end
        if log.legacy:
            self._legacy.add(instance_id)
        else:
            self._legacy.discard(instance_id)
        return records, log.payloads

    def _end(self, instance_id: str) -> LogEnd:
        """Where the signed history of `instance_id` ends (read from the store when this
        backend has not read or written it)."""
        end = self._ends.get(instance_id)
        if end is None:
            if self._key is None:
                return EMPTY_LOG_END
            self._read_log(instance_id)
            end = self._ends[instance_id]
        return end

    def _fold(
        self,
        instance_id: str,
        payloads: list[bytes],
        loads: Callable[[bytes], Any] = pickle.loads,
    ) -> tuple[dict[str, Any], dict[Any, Any]]:
        """The state the record payloads add up to, and the events the last one consumed."""
        state: dict[str, Any] = {}
        journal: dict[int, Any] | None = None
        versions: dict[str, Any] | None = None
        consumed: dict[int, str] = {}
        history = History()
        #: The large values of the snapshots (see `out_of_line`), by key.
        blobs: dict[int, Any] = {}
        for data in payloads:
            changes = _decode(instance_id, data, loads)
            if "reset" in changes:
                state, journal, versions, history, blobs = {}, None, None, History(), {}
            fields = changes.get("set")
            if fields:
                if "history" in fields:
                    history = History(fields["history"])
                state.update(fields)
                if "journal" in fields:
                    journal = dict(state.pop("journal"))
                if "code_versions" in fields:
                    versions = dict(state.pop("code_versions"))
                if "blobs" in fields:
                    blobs.update(state.pop("blobs"))
            more_blobs = changes.get("blobs")
            if more_blobs:
                blobs.update(more_blobs)
            truncate_from = changes.get("truncate_from")
            if truncate_from is not None and journal:
                journal = {seq: entry for seq, entry in journal.items() if seq < truncate_from}
            dropped = changes.get("drop")
            if dropped and journal:
                for seq in dropped:
                    journal.pop(seq, None)
            entries = changes.get("entries")
            if entries:
                if journal is None:
                    journal = {}
                journal.update(entries)
                written_at = fields.get("updated_at") if fields else None
                for seq, entry in entries.items():
                    history.add(seq, entry, written_at)
            below = changes.get("prune_below")
            if below is not None:
                if journal is None:
                    journal = {}
                elif journal and min(journal) < below:
                    journal = {seq: entry for seq, entry in journal.items() if seq >= below}
            more_versions = changes.get("code_versions")
            if more_versions:
                versions = {**(versions or {}), **more_versions}
            consumed = changes.get("consumed_events", ())
        if history:
            state["history"] = history
        if journal is not None:
            state["journal"] = journal
        if versions is not None:
            state["code_versions"] = versions
        keys = state.get("blob_keys")
        if keys:
            missing = [key for key in keys if key not in blobs]
            if missing:
                raise CorruptStateError(
                    f"instance {instance_id!r}: its saved call stack refers to large values "
                    f"{missing[:5]} that its log does not hold; it was not loaded. Restore "
                    "the store from a backup, or delete the instance"
                )
            state["blobs"] = {key: blobs[key] for key in keys}
        return state, dict(consumed)

    def save_state(self, instance_id: str, state: dict[str, Any]) -> None:
        """Replace the whole state of `instance_id` (one compacted record)."""
        unsettled = self._replace(instance_id, state)
        if unsettled is not None:
            raise RuntimeError(
                "save_state was called from a coroutine on a group-committing store; the "
                "runtime writes through save_changes, which returns the write to await"
            )

    def _replace(self, instance_id: str, state: dict[str, Any]) -> Awaitable[None] | None:
        claimed = self._claimed.pop(instance_id, {})
        if isinstance(state.get("history"), History):  # a state as `load_state` folds it
            state = {**state, "history": state["history"].stored()}
        record = {"reset": True, "set": state, "consumed_events": sorted(claimed.items())}
        self._summaries.pop(instance_id, None)  # a compaction hands the store the summary
        summary = self._summary(instance_id, state)
        unsettled, written = self._write(instance_id, _encode(record), summary, whole=True)
        self._log_sizes[instance_id] = (1, written - _blob_bytes(state.get("blobs")))
        return self._after_write(instance_id, claimed, unsettled)

    def _write(
        self,
        instance_id: str,
        payload: bytes,
        summary: InstanceSummary | None,
        *,
        whole: bool = False,
    ) -> tuple[Awaitable[None] | None, int]:
        """Append `payload` as a record (the whole log, with `whole`), signed in its place in
        the chain with a key (and the head naming it, for a store that keeps heads); the
        write's awaitable, and the record's size."""
        if len(payload) > self.max_state_bytes:
            raise StateTooLargeError(
                f"instance {instance_id!r}: the state to save is {readable_size(len(payload))}, "
                f"more than max_state_bytes ({readable_size(self.max_state_bytes)}); nothing "
                "was written and the instance stays at its last write",
                instance_id=instance_id,
                size=len(payload),
                limit=self.max_state_bytes,
            )
        if self._key is None:
            if whole:
                return self.store.replace_records(instance_id, [payload], summary), len(payload)
            return self.store.append_record(instance_id, payload, summary), len(payload)
        data, end = self._seals.seal_record(
            instance_id, self._end(instance_id), payload, starts_log=whole
        )
        heads = {"head": self._seals.seal_head(instance_id, end)} if self._heads else {}
        try:
            if whole:
                unsettled = self.store.replace_records(instance_id, [data], summary, **heads)
            else:
                unsettled = self.store.append_record(instance_id, data, summary, **heads)
        except BaseException:
            # The next write reads where the history ends from the store again.
            self._ends.pop(instance_id, None)
            raise
        self._ends[instance_id] = end
        if whole:
            self._legacy.discard(instance_id)
        return unsettled, len(data)

    def _after_write(
        self, instance_id: str, claimed: dict[Any, Any] | None, unsettled: Awaitable[None] | None
    ) -> Awaitable[None] | None:
        """Delete the events a write consumed, once that write is durable."""
        if not claimed:
            return unsettled
        if unsettled is None:
            self.store.delete_events(instance_id, list(claimed))
            return None

        async def then_delete() -> None:
            await unsettled
            self.store.delete_events(instance_id, list(claimed))

        return then_delete()

    def save_changes(
        self,
        instance_id: str,
        changes: dict[str, Any],
        full_state: Callable[[], dict[str, Any]],
    ) -> Awaitable[None] | None:
        """Append `changes` as one record; once the log has reached its bound (or the
        runtime asks, with ``"compact"``: blobs no snapshot refers to outweigh the others),
        write the whole state as one record instead, so a log never grows far past it. The
        blobs of a large state (``"blobs"``) do not count towards the bound in bytes: they
        are written once and kept, not rewritten at every compaction of a log of steps."""
        count, size = self._log_sizes.get(instance_id, _EMPTY_LOG)
        if (
            changes.pop("compact", False)
            or count >= self.compact_after
            or size >= self.compact_after_bytes
            or instance_id in self._legacy
        ):
            return self._replace(instance_id, full_state())
        claimed = self._claimed.get(instance_id)
        if claimed:
            del self._claimed[instance_id]
            changes["consumed_events"] = sorted(claimed.items())
        summary = self._summary(instance_id, changes.get("set"))
        unsettled, written = self._write(instance_id, _encode(changes), summary)
        written -= _blob_bytes(changes.get("blobs"))
        self._log_sizes[instance_id] = (count + 1, size + written)
        if claimed or unsettled is not None:
            return self._after_write(instance_id, claimed, unsettled)
        return None

    def save_step(
        self,
        instance_id: str,
        step: StepWrite,
        full_state: Callable[[], dict[str, Any]],
    ) -> Awaitable[None] | None:
        """Append `step` as one flat step record (no status changes with it)."""
        count, size = self._log_sizes.get(instance_id, _EMPTY_LOG)
        if (
            count >= self.compact_after
            or size >= self.compact_after_bytes
            or (self._claimed.get(instance_id) or instance_id in self._legacy)
        ):
            return self.save_changes(instance_id, step.changes(), full_state)
        payload = _dumps((STEP_RECORD_FORMAT, *step), _PROTOCOL)
        unsettled, written = self._write(instance_id, payload, None)
        self._log_sizes[instance_id] = (count + 1, size + written)
        return unsettled

    def _summary(self, instance_id: str, fields: dict[str, Any] | None) -> InstanceSummary | None:
        """The instance's summary when a write setting `fields` changes it, else None."""
        if not fields or "status" not in fields:
            return None
        key = (fields["status"], fields.get("waiting_for"), fields.get("deadline"))
        if self._summaries.get(instance_id) == key:
            return None
        self._summaries[instance_id] = key
        return InstanceSummary(*key)

    def wait_for_event(self, instance_id: str, event_name: str) -> Event | None:
        claimed = self._claimed.setdefault(instance_id, {})
        for event_id, data in self.store.read_events(instance_id):
            if event_id in claimed:
                continue
            name, payload = self._load_event(instance_id, event_id, data)
            if name == event_name:
                claimed[event_id] = _event_digest(data)
                return Event(name, payload)
        return None

    def publish_event(self, instance_id: str, event_name: str, payload: Any = None) -> None:
        """Store `event_name` (with `payload`) for `instance_id`; durable when it returns."""
        _check_event(instance_id, event_name)
        self._append_event(instance_id, event_name, payload)

    def _append_event(self, instance_id: str, event_name: str, payload: Any) -> None:
        data = self._seals.seal_event(instance_id, cloudpickle.dumps((event_name, payload)))
        self.store.append_event(instance_id, data)

    def cancel_instance(
        self,
        instance_id: str,
        reason: str | None = None,
        *,
        loads: Callable[[bytes], Any] = pickle.loads,
    ) -> str:
        """Ask `instance_id` to cancel: `Cancelled` (with `reason`) is raised in it at its
        next checkpoint, at once when it is parked (a worker wakes it). The request is stored
        in its inbox before this returns, so it survives any crash. Returns the status the
        instance had; `DurableError` for an unknown or ended instance. `loads` reads the
        state, as for `read_state`."""
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"a cancel reason must be a string or None, got {reason!r}")
        state = self.read_state(validate_instance_id(instance_id), loads=loads)
        status = _status_to_change(self, instance_id, state, "cancel")
        self._append_event(instance_id, CANCEL_EVENT, reason)
        runtime_for(self).request_cancel(instance_id, reason)
        return status

    def cancel_requested(self, instance_id: str, *, take: bool = False) -> Event | None:
        if take:
            return self.wait_for_event(instance_id, CANCEL_EVENT)
        claimed = self._claimed.get(instance_id, ())
        for event_id, data in self.store.read_events(instance_id):
            if event_id not in claimed:
                name, payload = self._load_event(instance_id, event_id, data)
                if name == CANCEL_EVENT:
                    return Event(name, payload)
        return None

    async def publish_event_async(
        self, instance_id: str, event_name: str, payload: Any = None
    ) -> None:
        """`publish_event` off the event loop, for stores that block."""
        await asyncio.to_thread(self.publish_event, instance_id, event_name, payload)

    def pending_events(
        self, instance_id: str, *, loads: Callable[[bytes], Any] = cloudpickle.loads
    ) -> list[Event]:
        """The events stored for `instance_id` and not consumed yet, oldest first; `loads`
        as for `read_state`."""
        return [
            Event(*self._load_event(instance_id, event_id, data, loads))
            for event_id, data in self.store.read_events(instance_id)
        ]

    def _load_event(
        self,
        instance_id: str,
        event_id: int,
        data: bytes,
        loads: Callable[[bytes], Any] = cloudpickle.loads,
    ) -> tuple[str, Any]:
        return loads(self._seals.open_event(instance_id, event_id, data))


_EMPTY_LOG = (0, 0)


def _check_event(instance_id: str, event_name: str) -> None:
    validate_instance_id(instance_id)
    if not isinstance(event_name, str) or not event_name:
        raise TypeError(f"an event name must be a non-empty string, got {event_name!r}")
    if event_name == CANCEL_EVENT:
        raise ValueError(
            f"the event name {CANCEL_EVENT!r} is reserved for cancellation; cancel an "
            "instance with handle.cancel() or 'durable cancel ID'"
        )


def _status_to_change(backend: Any, instance_id: str, state: Any, what: str) -> str:
    """The status of an instance an operator changes (`what`); `DurableError` when the
    instance does not exist or has ended."""
    from .runtime import COMPLETED, FAILED

    if state is None:
        raise DurableError(f"no instance {instance_id!r} in {backend!r}; nothing to {what}")
    status = state.get("status")
    if status in (COMPLETED, FAILED):
        raise InstanceEndedError(
            f"instance {instance_id!r} has {status} already; there is nothing to {what}"
        )
    return status


#: The environment variable the command line and the default backend take the key from.
SECRET_KEY_VARIABLE = "DURABLE_SECRET_KEY"
#: Earlier keys still accepted (`verify_keys`), separated by commas.
VERIFY_KEYS_VARIABLE = "DURABLE_VERIFY_KEYS"


def _secret_key(secret_key: bytes | str | None) -> bytes | None:
    if secret_key is None:
        return None
    if isinstance(secret_key, str):
        secret_key = secret_key.encode("utf-8")
    if not isinstance(secret_key, bytes) or not secret_key:
        raise TypeError(
            f"secret_key must be non-empty bytes or str (or None to sign nothing), got "
            f"{secret_key!r}"
        )
    return secret_key


def secret_key_from_environment() -> bytes | None:
    """The key ``DURABLE_SECRET_KEY`` holds, or None when it is unset or empty."""
    return _secret_key(os.environ.get(SECRET_KEY_VARIABLE) or None)


def keys_from_environment() -> dict[str, Any]:
    """`DurableBackend`'s key options as the environment sets them: ``DURABLE_SECRET_KEY``,
    and ``DURABLE_VERIFY_KEYS`` (earlier keys, separated by commas)."""
    verify = [key for key in os.environ.get(VERIFY_KEYS_VARIABLE, "").split(",") if key]
    secret_key = secret_key_from_environment()
    if verify and secret_key is None:
        raise ValueError(
            f"{VERIFY_KEYS_VARIABLE} is set but {SECRET_KEY_VARIABLE} is not: the earlier keys "
            "verify state next to the current key that signs it; set both"
        )
    return {"secret_key": secret_key, "verify_keys": verify}


def _blob_bytes(blobs: dict[Any, Any] | None) -> int:
    """Bytes of the blobs of a large state (see `out_of_line`)."""
    return sum(len(data) for _, data in blobs.values()) if blobs else 0


def _event_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _encode(changes: dict[str, Any]) -> bytes:
    return _dumps((RECORD_FORMAT, changes), _PROTOCOL)


def _decode(
    instance_id: str, data: bytes, loads: Callable[[bytes], Any] = pickle.loads
) -> dict[str, Any]:
    record = loads(data)
    version = record[0]
    if version == RECORD_FORMAT or version == _RECORD_BEFORE_SHOWN_DIGESTS:
        return record[1]
    if version == STEP_RECORD_FORMAT or version == _STEP_BEFORE_SHOWN_DIGESTS:
        return StepWrite._make(record[1:]).changes()
    if version == _STEP_WITHOUT_START_FORMAT:
        return StepWrite._make((*record[1:], None)).changes()
    if version == _FLAT_FRAME_STEP_FORMAT:
        return _changes_of_flat_frame_step(record)
    raise StateFormatError(
        f"instance {instance_id!r} was stored in record format {version!r}; this version "
        f"reads formats {_RECORD_BEFORE_SHOWN_DIGESTS} to {RECORD_FORMAT}"
    )


#: The record of the most common write (`StepWrite`), its fields laid out flat after the
#: format number: one small pickle of a tuple costs about half the nested dictionaries of
#: the same changes.
STEP_RECORD_FORMAT = 6
#: The step record before shown digests, still read (the same layout).
_STEP_BEFORE_SHOWN_DIGESTS = 5
#: The step record before it held the call's start time, still read.
_STEP_WITHOUT_START_FORMAT = 4
#: The step record of earlier versions, still read: one frame of leaf values, laid out flat
#: inside it, and a scalar value.
_FLAT_FRAME_STEP_FORMAT = 3
_dumps = pickle.dumps
_PROTOCOL = pickle.HIGHEST_PROTOCOL


def _changes_of_flat_frame_step(record: tuple[Any, ...]) -> dict[str, Any]:
    """The changes a format-3 step record holds."""
    (
        _,
        updated_at,
        next_seq,
        prune_below,
        seq,
        function_id,
        args_digest,
        value,
        stack_format,
        key,
        fingerprint,
        resume_point,
        line,
        live,
        ranges,
    ) = record
    frame = (key, fingerprint, resume_point, line, live, None, ("at", seq, None), ranges)
    snapshot = (stack_format, (frame,))
    return StepWrite(
        updated_at, next_seq, prune_below, seq, function_id, args_digest, "value", value, snapshot
    ).changes()


#: id(backend) -> its runtime. Keyed by identity: backends need not be hashable, and two
#: equal backends are still two places.
_runtimes: dict[int, DurableRuntime] = {}


class WholeStateBackend(DurableBackend):
    """`DurableBackend` over a whole-state store: one that implements only the original
    package's ``load(instance_id)`` and ``save(instance_id, state)``, plain or ``async``.

    Every write saves the whole state dict (journal and snapshot included), so a write costs
    what the state weighs rather than what changed; events are kept under the key
    ``"<instance id>/events"`` (no instance id has a ``/``). Leases hold within this process
    only, and a worker needs a store of records. `DurableBackend(store)` makes one.
    """

    #: Its `wait_for_event` returns None at once when the event is not there (the runtime
    #: asks a custom backend's async one as if it might wait for the event).
    answers_at_once = True

    def __init__(
        self, store: StateStore, *, secret_key: bytes | str | None = None, **_: Any
    ) -> None:
        if secret_key is not None:
            raise ValueError(
                f"{type(store).__name__} is a whole-state store: it saves state dicts as it is "
                "given them, so they cannot be signed; use a store of records for secret_key"
            )
        self.store = store
        self._key = None
        self._claimed: dict[str, dict[int, str]] = {}
        self._owner = f"runner {uuid.uuid4().hex[:12]} on {socket.gethostname()}"
        load, save = store.load, store.save
        self._async = inspect.iscoroutinefunction(load) or inspect.iscoroutinefunction(save)

    def __repr__(self) -> str:
        return f"DurableBackend({self.store!r}, whole-state)"

    def _forget(self, instance_id: str) -> None:
        self._claimed.pop(instance_id, None)

    # Each method is written once, as steps asking for ("load", key) or ("save", key, value),
    # and driven plainly over a plain store or awaited over an async one.
    def _drive(self, steps) -> Any:
        return self._drive_async(steps) if self._async else self._drive_plain(steps)

    def _drive_plain(self, steps) -> Any:
        reply = None
        try:
            while True:
                request = steps.send(reply)
                reply = self._ask(request)
        except StopIteration as done:
            return done.value

    async def _drive_async(self, steps) -> Any:
        reply = None
        try:
            while True:
                request = steps.send(reply)
                reply = self._ask(request)
                if inspect.isawaitable(reply):
                    reply = await reply
        except StopIteration as done:
            return done.value

    def _ask(self, request: tuple[Any, ...]) -> Any:
        kind, key, *value = request
        return self.store.load(key) if kind == "load" else self.store.save(key, *value)

    def load_state(self, instance_id: str) -> Any:
        self._claimed[instance_id] = {}
        return self._drive(self._reading(instance_id, drop_leftovers=True))

    def read_state(self, instance_id: str) -> Any:
        return self._drive(self._reading(instance_id, drop_leftovers=False))

    def _reading(self, instance_id: str, drop_leftovers: bool):
        state = yield ("load", validate_instance_id(instance_id))
        if state is None:
            return None
        state = dict(state)
        consumed = set(state.pop("consumed_events", None) or ())
        if consumed and drop_leftovers:
            # The save that recorded these may have stopped before taking them out.
            yield from self._dropping_events(instance_id, consumed)
        return state

    def save_state(self, instance_id: str, state: dict[str, Any]) -> Any:
        return self._drive(self._saving(instance_id, state))

    def save_changes(
        self, instance_id: str, changes: dict[str, Any], full_state: Callable[[], dict[str, Any]]
    ) -> Any:
        return self.save_state(instance_id, full_state())

    def save_step(
        self, instance_id: str, step: StepWrite, full_state: Callable[[], dict[str, Any]]
    ) -> Any:
        return self.save_state(instance_id, full_state())

    def _saving(self, instance_id: str, state: dict[str, Any]):
        claimed = self._claimed.pop(instance_id, {})
        yield ("save", instance_id, {**state, "consumed_events": sorted(claimed)})
        if claimed:
            yield from self._dropping_events(instance_id, set(claimed))

    def _dropping_events(self, instance_id: str, event_ids: set[int]):
        key = _events_key(instance_id)
        inbox = yield ("load", key)
        if inbox and any(number in event_ids for number, _, _ in inbox["pending"]):
            pending = [event for event in inbox["pending"] if event[0] not in event_ids]
            yield ("save", key, {"next": inbox["next"], "pending": pending})

    def wait_for_event(self, instance_id: str, event_name: str) -> Any:
        return self._drive(self._taking(instance_id, event_name))

    def _taking(self, instance_id: str, event_name: str):
        inbox = yield ("load", _events_key(instance_id))
        claimed = self._claimed.setdefault(instance_id, {})
        for number, name, payload in (inbox or _EMPTY_INBOX)["pending"]:
            if name == event_name and number not in claimed:
                claimed[number] = ""
                return Event(name, payload)
        return None

    def publish_event(self, instance_id: str, event_name: str, payload: Any = None) -> Any:
        """Store the event; durable when it returns (when it is awaited, over an async
        store)."""
        _check_event(instance_id, event_name)
        return self._drive(self._publishing(instance_id, event_name, payload))

    def cancel_requested(self, instance_id: str, *, take: bool = False) -> Event | None:
        if self._async:
            return None  # asked without waiting, or not at all: cancelled in-process only
        if take:
            return self.wait_for_event(instance_id, CANCEL_EVENT)
        return next((e for e in self.pending_events(instance_id) if e.name == CANCEL_EVENT), None)

    async def publish_event_async(
        self, instance_id: str, event_name: str, payload: Any = None
    ) -> None:
        published = self.publish_event(instance_id, event_name, payload)
        if inspect.isawaitable(published):
            await published

    def _publishing(self, instance_id: str, event_name: str, payload: Any):
        key = _events_key(instance_id)
        inbox = (yield ("load", key)) or _EMPTY_INBOX
        pending = [*inbox["pending"], (inbox["next"], event_name, payload)]
        yield ("save", key, {"next": inbox["next"] + 1, "pending": pending})

    def pending_events(self, instance_id: str) -> Any:
        return self._drive(self._listing(instance_id))

    def _listing(self, instance_id: str):
        inbox = (yield ("load", _events_key(instance_id))) or _EMPTY_INBOX
        return [Event(name, payload) for _, name, payload in inbox["pending"]]


_EMPTY_INBOX = {"next": 1, "pending": []}


def _events_key(instance_id: str) -> str:
    return f"{validate_instance_id(instance_id)}/events"


def runtime_for(backend: OrchestrationBackend) -> DurableRuntime:
    """The runtime of `backend` (one per backend object, so busy-checks see each other)."""
    runtime = _runtimes.get(id(backend))
    if runtime is None or runtime.backend is not backend:
        runtime = _runtimes[id(backend)] = DurableRuntime(backend)
        try:
            weakref.finalize(backend, _runtimes.pop, id(backend), None)
        except TypeError:
            pass  # not weak-referenceable: the entry lives as long as the process
    return runtime


_default: DurableBackend | None = None


def given_or_default(backend: OrchestrationBackend | None) -> OrchestrationBackend:
    """`backend`, or the process-wide `default_backend()` when it is None."""
    return backend if backend is not None else default_backend()


def default_backend() -> DurableBackend:
    """The process-wide backend used when no `orchestration_backend` is given.

    In memory, unless the environment variable ``DURABLE_STORE`` names a store URL such as
    ``file:///var/lib/app/durable`` or ``memory://``; signed with ``DURABLE_SECRET_KEY``
    when that is set.
    """
    global _default
    if _default is None:
        url = os.environ.get("DURABLE_STORE")
        _default = DurableBackend(
            store_from_url(url) if url else InMemoryStateStore(), **keys_from_environment()
        )
    return _default
