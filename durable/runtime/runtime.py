"""Running one instance: start, resume, pause, finish — and the state record that is saved.

`DurableRuntime` applies the call-semantics table (new / running / waiting / completed /
failed / busy / other arguments) and drives the compiled coroutine; `InstanceRun` is one
run of one instance and writes its checkpoints through the backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import pickle
import time
import uuid
from contextlib import contextmanager
from types import CoroutineType
from typing import TYPE_CHECKING, Any, NamedTuple

import cloudpickle

from .._errors import (
    ArgumentsMismatchError,
    CheckpointException,
    DurableError,
    InstanceBusyError,
    InstanceSleeping,
    PauseForEventException,
    RunStoppedError,
    StateFormatError,
    StateTooLargeError,
)
from .._ids import validate_instance_id
from . import out_of_line as out_of_line_settings
from . import references
from .catalog import program_for_key
from .context import current_slot, enter_run, leave_run
from .frames import AtOperation, CallStack, FunctionCall, Gathering, largest_live_values
from .helpers import compile_failures
from .history import History
from .journal import SUCCEEDED, JournalPolicy
from .operations import (
    PARK,
    CancelPoint,
    Operation,
    WaitForEvent,
    _Park,
    ask_for_event,
    close_awaitable,
    error_summary,
)
from .out_of_line import OutOfLine
from .tracing import operation_span, run_span, tracer

logger: logging.Logger = logging.getLogger("durable.runtime")

#: How often a running instance looks for a cancellation sent from elsewhere (seconds).
CANCEL_CHECK_SECONDS = 1.0

if TYPE_CHECKING:
    from .backend import OrchestrationBackend
    from .program import DurableProgram

#: Version of the state dictionary handed to `OrchestrationBackend.save_state`.
STATE_FORMAT = 2

RUNNING, WAITING, COMPLETED, FAILED = "running", "waiting", "completed", "failed"
#: Parked in a durable ``sleep`` until its deadline (by a runtime that parks sleeps).
SLEEPING = "sleeping"
#: Started by `DurableProgram.start` and not run yet: the next call (or a worker) runs it.
ENQUEUED = "enqueued"
#: Every status an instance can have, in the order an instance goes through them.
STATUSES = (ENQUEUED, RUNNING, WAITING, SLEEPING, COMPLETED, FAILED)


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


_new_tuple = tuple.__new__


class StepWrite(NamedTuple):
    """The most common write: a call settled on its first write (`outcome` is ``"value"``,
    a scalar kept as itself, or ``"result"``, pickled), with a snapshot of the call stack
    taken at it and the journal pruned below `prune_below`. `changes` is the same write in
    the general form `save_changes` takes."""

    updated_at: float
    next_seq: int
    prune_below: int
    seq: int
    function_id: str
    args_digest: str
    outcome: str
    payload: Any
    snapshot: tuple[Any, ...] | bytes
    #: When the call started (epoch seconds), for the history; None in older records.
    started_at: float | None = None

    def changes(self) -> dict[str, Any]:
        entry = {
            "function_id": self.function_id,
            "args_digest": self.args_digest,
            "status": SUCCEEDED,
            self.outcome: self.payload,
        }
        if self.started_at is not None:
            entry["started_at"] = self.started_at
        return {
            "set": {
                "updated_at": self.updated_at,
                "snapshot": self.snapshot,
                "next_seq": self.next_seq,
            },
            "entries": {self.seq: entry},
            "prune_below": self.prune_below,
        }


class InstanceRun:
    """One run of one instance: its call stack, its journal, and the writes that save them.

    Every write goes through `_write` as one `save_changes` of the backend (one store write),
    or, for a settled call, `_write_step` as one `save_step`:
    the fields that changed, the journal entries added or cleared, and a snapshot of the call
    stack when one is due. `full_state` is the whole state those writes add up to.
    """

    def __init__(
        self,
        backend: OrchestrationBackend,
        instance_id: str,
        program: DurableProgram[..., Any],
        arguments_blob: bytes,
        created_at: float,
    ) -> None:
        self.backend = backend
        self.instance_id = instance_id
        self.program = program
        self.policy: JournalPolicy = program.journal_policy
        self.arguments_blob = arguments_blob
        self.created_at = created_at
        self.stack: CallStack = CallStack()
        self.journal: dict[int, dict[str, Any]] = {}
        #: A summary per durable operation, kept after the journal entry is pruned.
        self.history: History = History(limit=self.policy.history_limit)
        self.next_seq: int = 1
        #: Durable operations since the last snapshot (see `JournalPolicy.snapshot_every`).
        self.operations_since_snapshot: int = 0
        #: Tasks of fan-out members; cancelled if the run stops before they finish.
        self.gathered_tasks: list[Any] = []
        #: Fan-outs running now: while any is, a snapshot is taken only where it resumes.
        self.fan_outs = 0
        #: On a resume, the journal entries written after the snapshot, by the fan-out branch
        #: that wrote them (None: the instance's own frames), oldest first: the branch's next
        #: operations take them again in that order, however the branches interleave now.
        self.replay_seqs: dict[str | None, list[int]] = {}
        self.fields: dict[str, Any] = {}
        self.written_versions: set[str] = set()
        #: Writes a store has accepted but not yet made durable (group commit): awaited
        #: before the run goes on, so nothing is acknowledged before its transaction commits.
        self.unsettled_writes: list[Any] = []
        #: Those of them that are futures, until the run ends (see `drain_writes`).
        self.writes_in_flight: list[asyncio.Future[Any]] = []
        self.waiting_for: WaitForEvent | None = None
        #: Sleeps longer than this many seconds park the instance (`park_sleeping`); None
        #: sleeps in place (see `DurableRuntime.park_sleeps_after`).
        self.park_sleeps_after: float | None = None
        #: When the instance parked in a sleep wakes up (set by `park_sleeping`).
        self.sleeping_until: float | None = None
        #: Set when the run stops without finishing (parked, or its state could not be
        #: saved): unwinding its coroutines must not run the user's handlers or finally.
        self.closing: bool = False
        #: Set when the run must do something else than start its next operation: stop
        #: there (`shutting_down`) or raise `Cancelled` there (`cancel_reason`).
        self.stop_requested: bool = False
        #: Set by `DurableRuntime.request_stop`: the run stops before its next operation.
        self.shutting_down = False
        #: Set by `request_cancel`: `Cancelled` is raised at the next checkpoint.
        self.cancel_pending: bool = False
        self.cancel_reason: str | None = None
        #: When the run next looks in its inbox for a cancellation (monotonic seconds), or
        #: None: its backend cannot be asked without waiting.
        self.look_for_cancel_at: float | None = (
            time.monotonic() + CANCEL_CHECK_SECONDS
            if getattr(backend, "cancel_requested", None) is not None
            else None
        )
        self.stopped: bool = False
        #: The OpenTelemetry tracer when tracing is on (see `tracing`), else None.
        self.tracer: Any = None
        #: What made a write fail, for the fan-outs its branches leave to raise.
        self.failed_write: BaseException | None = None
        #: The blobs of a large state (`out_of_line`): None while its snapshots are small.
        self.out_of_line: OutOfLine | None = (
            OutOfLine()
            if out_of_line_settings.ENABLED and out_of_line_settings.LARGE_STATE == 0
            else None
        )
        #: Set when the backend asked for the whole state (it rewrites the log with it).
        self.compacting: bool = False
        #: Keys of the blobs the last snapshot refers to (`out_of_line`).
        self.snapshot_blob_keys: set[int] = set()

    def request_cancel(self, reason: str | None) -> None:
        """Raise `Cancelled` at the next checkpoint (a cancel event is in the inbox)."""
        self.cancel_pending = True
        self.cancel_reason = reason
        self.stop_requested = True

    def look_for_cancel(self) -> None:
        """Whether a cancellation arrived in the inbox: asked at most every
        `CANCEL_CHECK_SECONDS` while the run writes (another process cancels it so)."""
        self.look_for_cancel_at = time.monotonic() + CANCEL_CHECK_SECONDS
        if self.cancel_pending:
            return
        with _from_store(self.instance_id, self):
            found = self.backend.cancel_requested(self.instance_id)
        if inspect.isawaitable(found):  # a custom backend's async method: not asked
            found.close()
            self.look_for_cancel_at = None
            return
        if found is not None:
            self.request_cancel(found.payload)

    def stop_here(self, awaitable: Any, frame: FunctionCall, resume_point: int) -> Any:
        """Stop the run instead of starting the operation `awaitable`: the instance stays
        at its last write, as after a crash there, and nothing new starts. For a
        cancellation, the frame gets `Cancelled` there instead."""
        if not self.shutting_down and self.cancel_pending:
            close_awaitable(awaitable)
            frame.resume_point = resume_point
            frame.pending = None
            return self.deliver_cancel(frame)
        self.stopped = True
        close_awaitable(awaitable)
        slot = current_slot()
        if slot is not None:
            return slot.stop()  # a fan-out's member: the fan-out stops when all have
        return _Park()

    def deliver_cancel(self, frame: FunctionCall) -> Any:
        """What `frame` awaits instead of its checkpoint's operation: a journaled
        `Cancelled`, raised there. Its cleanup then runs like any code."""
        self.cancel_pending = False
        self.stop_requested = self.shutting_down
        return CancelPoint(self.cancel_reason)._durable_link(frame, frame.resume_point)

    def stop_at_failed_write(self, error: BaseException) -> None:
        """The instance stays at its last saved write, as after a crash here: unwinding must
        not run the user's handlers or finally blocks, and no other fan-out branch may start
        anything more (a real crash would have stopped them too)."""
        self.closing = True
        self.close_unstarted_coroutines()
        if self.failed_write is None:
            self.failed_write = error
        current = asyncio.current_task()
        for task in self.gathered_tasks:
            if task is not current:
                task.cancel()

    def close_unstarted_coroutines(self) -> None:
        """Close the coroutines the frames made and have not awaited yet, as the run stops:
        a resumed run makes them again (`references.reduce_coroutine`), so these are not
        "never awaited"."""
        values: list[Any] = []
        for frame in self.stack.all_frames():
            python_frame = frame.python_frame
            frame_locals = python_frame.f_locals if python_frame is not None else frame.saved_locals
            values.extend((frame_locals or {}).values())
        _close_unstarted(values)

    def take_seq(self, branch: str | None = None) -> int:
        """The next journal sequence number of `branch` (see `replay_seqs`)."""
        replayed = self.replay_seqs.get(branch) if self.replay_seqs else None
        if replayed:
            return replayed.pop(0)
        seq = self.next_seq
        self.next_seq += 1
        return seq

    # -- writes -----------------------------------------------------------------------------
    def start(self, status: str) -> None:
        """The first write of a new instance: its arguments and its root frame."""
        self.fields = {
            "format_version": STATE_FORMAT,
            "instance_id": self.instance_id,
            "program": self.program.key,
            "arguments": self.arguments_blob,
            "arguments_digest": _digest(self.arguments_blob),
            "created_at": self.created_at,
            "waiting_for": None,
            "deadline": None,
            "result": None,
            "error": None,
        }
        self._write(status, snapshot=True, changes={"set": dict(self.fields)})

    def record(self, operation: Operation, entry: dict[str, Any]) -> None:
        """Journal `entry` for `operation`, with a snapshot when one is due."""
        seq = operation.seq
        if operation.branch is not None:
            entry["branch"] = operation.branch
        self.journal[seq] = entry
        snapshot = False
        if not operation.counted:
            # A snapshot goes with the first write of an operation, never a later one: the
            # frame is saved at the call, and the entry settles it on resume.
            operation.counted = True
            if operation.frame.pending is operation.place or operation.suspended_here():
                count = self.operations_since_snapshot = self.operations_since_snapshot + 1
                snapshot = count >= self.policy.snapshot_every and (
                    not self.fan_outs or self.stack.resumable()
                )
        # In the history before the write, which may compact the log (its time is the
        # write's: see `full_state`).
        written = self.history.entries
        written.append((seq, entry, None))
        if not (snapshot and self._write_step(seq, entry)):
            self._write(RUNNING, snapshot, {"entries": {seq: entry}})
        if written and written[-1][2] is None:
            written[-1] = (seq, entry, self.fields["updated_at"])
        if self.tracer is not None:
            operation_span(self.tracer, self.instance_id, seq, entry, self.fields["updated_at"])
        look_at = self.look_for_cancel_at
        if look_at is not None and time.monotonic() >= look_at:
            self.look_for_cancel()

    def _write_step(self, seq: int, entry: dict[str, Any]) -> bool:
        """Write a call that settled on its first write, with the snapshot due, as one
        `StepWrite` when nothing else changes (status, code versions); False when it is
        not such a write, for `_write` to make. The most common write, made directly."""
        fields = self.fields
        if (
            len(entry) != 5
            or entry.get("status") != SUCCEEDED
            or "started_at" not in entry
            or "function_id" not in entry
            or "args_digest" not in entry
            or fields.get("status") != RUNNING  # running: waiting for nothing
            or self.closing
            or self.out_of_line is not None  # its blobs go in the general record
        ):
            return False
        outcome = "value" if "value" in entry else "result"
        if outcome not in entry:
            return False
        written = self.written_versions
        for frame in self.stack.all_frames():
            if frame.code.fingerprint not in written:
                return False
        try:
            snapshot, below = self._take_snapshot()
            now = time.time()
            next_seq = self.next_seq
            fields["updated_at"] = now
            fields["snapshot"] = snapshot
            fields["next_seq"] = next_seq
            # tuple.__new__ directly: a NamedTuple's own constructor is a Python call.
            step = _new_tuple(
                StepWrite,
                (
                    now,
                    next_seq,
                    below,
                    seq,
                    entry["function_id"],
                    entry["args_digest"],
                    outcome,
                    entry[outcome],
                    snapshot,
                    entry["started_at"],
                ),
            )
            unsettled = self.backend.save_step(self.instance_id, step, self.full_state)
            if unsettled is not None:
                self._hand_over(unsettled)
        except BaseException as error:
            stopped = self._stop_at_write(error)  # as in `_write`
            if stopped is error:
                raise
            raise stopped from None
        return True

    def clear_journal_from(self, seq: int, branch: str | None = None) -> None:
        """Forget entry `seq` and every later one of its branch (the code took another
        path): one write. Other branches of a fan-out keep theirs."""
        if branch is None:
            for stale in [s for s in self.journal if s >= seq]:
                del self.journal[stale]
            self.replay_seqs.clear()
            self.next_seq = max(self.next_seq, seq + 1)
            self._write(RUNNING, snapshot=False, changes={"truncate_from": seq})
            return
        stale = [seq, *self.replay_seqs.pop(branch, ())]
        for number in stale:
            self.journal.pop(number, None)
        self._write(RUNNING, snapshot=False, changes={"drop": stale})

    def record_entry(self, seq: int, entry: dict[str, Any]) -> None:
        """Journal `entry` at `seq` for no operation (a fan-out's outcome): one write."""
        self.journal[seq] = entry
        self._write(RUNNING, snapshot=False, changes={"entries": {seq: entry}})

    def park(self, waits: list[WaitForEvent], deadline: float | None) -> None:
        """Save the instance as waiting for any of `waits`' events (until `deadline`, when
        it has one), with a snapshot."""
        self.waiting_for = waits[0]
        changes: dict[str, Any] = {}
        events = list(dict.fromkeys(wait.event for wait in waits))
        if len(events) > 1 or self.fields.get("waiting_events"):
            changes["set"] = {"waiting_events": events if len(events) > 1 else None}
        self._write(
            WAITING,
            snapshot=True,
            changes=changes,
            waiting_for=waits[0].event,
            deadline=deadline,
        )

    def park_sleeping(self, wake_at: float) -> None:
        """Save the instance as sleeping until `wake_at`, with a snapshot: the run then stops
        and holds nothing (no task, slot or lease) until a worker wakes it when it is due."""
        self.sleeping_until = wake_at
        self._write(SLEEPING, snapshot=True, changes={}, deadline=wake_at)

    def _write(
        self,
        status: str,
        snapshot: bool,
        changes: dict[str, Any],
        *,
        waiting_for: str | None = None,
        deadline: float | None = None,
    ) -> None:
        if self.closing:
            # A gathered call still running when its run stopped: it must not write.
            raise asyncio.CancelledError
        try:
            fields = changes.get("set")
            if fields is None:
                fields = changes["set"] = {}
            saved = self.fields
            # The summary (status, what it waits for, until when) goes only when it changes.
            if (
                status != saved.get("status")
                or waiting_for is not None
                or saved.get("waiting_for") is not None
            ):
                fields["status"] = status
                fields["waiting_for"] = waiting_for
                fields["deadline"] = deadline
            fields["updated_at"] = time.time()
            if snapshot:
                self._add_snapshot(fields, changes)
            elif status == COMPLETED:
                # A failed instance keeps its last snapshot and the journal it reads: it can
                # be retried, forked or shown where it stopped.
                fields["snapshot"] = None
                self.snapshot_blob_keys = set()
                keep = self.policy.keep_history
                kept = sorted(self.journal)[-keep:] if keep else []
                changes["prune_below"] = self._prune(kept[0] if kept else self.next_seq)
            if self.out_of_line is not None:
                self._add_blobs(fields, changes, completed=status == COMPLETED)
            saved.update(fields)
            self.compacting = False
            unsettled = self.backend.save_changes(self.instance_id, changes, self.full_state)
            out_of_line = self.out_of_line
            if out_of_line is not None:
                if self.compacting:
                    out_of_line.compacted(unsettled)
                elif "blobs" in changes:
                    out_of_line.written(changes["blobs"], unsettled)
            if unsettled is not None:
                self._hand_over(unsettled)
        except BaseException as error:
            stopped = self._stop_at_write(error)
            if stopped is error:
                raise
            raise stopped from None

    def _stop_at_write(self, error: BaseException) -> BaseException:
        """A write failed with `error`: the run stops at its last write; what to raise (a
        state too large, explained with the values that make it so)."""
        if isinstance(error, StateTooLargeError):
            error = self._explain_too_large(error)
        self.stop_at_failed_write(error)
        return error

    def _add_blobs(
        self, fields: dict[str, Any], changes: dict[str, Any], *, completed: bool = False
    ) -> None:
        """Out of line, a write holds the blobs made since the last one, and the keys the
        state refers to when they changed (its snapshot's and its journal entries'); it asks
        for a compaction once the blobs the state no longer refers to outweigh the others,
        and when the instance completes with any (nothing rewrites its log after that)."""
        out_of_line = self.out_of_line
        live = set(self.snapshot_blob_keys)
        for entry in self.journal.values():
            keys = entry.get("blob_keys")
            if keys:
                live.update(keys)
        out_of_line.retain(live)
        snapshot = fields.get("snapshot", self.fields.get("snapshot"))
        live_bytes = out_of_line.live_bytes()
        # Written in pieces, the state is still one whole when the log is compacted.
        whole = len(snapshot or b"") + live_bytes
        limit = getattr(self.backend, "max_state_bytes", None)
        if limit is not None and whole > limit:
            raise StateTooLargeError(
                f"instance {self.instance_id!r}: the state is {readable_size(whole)}",
                instance_id=self.instance_id,
                size=whole,
                limit=limit,
            )
        keys = tuple(sorted(live))
        if keys != self.fields.get("blob_keys"):
            fields["blob_keys"] = keys
        new = out_of_line.take_new()
        if new:
            changes["blobs"] = new
        garbage = out_of_line.garbage_bytes()
        if garbage > max(live_bytes, _BLOB_GARBAGE_BYTES) or (completed and garbage):
            changes["compact"] = True

    def dump_value(self, value: Any) -> tuple[bytes, tuple[int, ...]]:
        """`value` pickled for a journal entry, and the keys of the blobs it refers to: out
        of line, a large string a call returns is written once for its entry and for the
        snapshot that keeps it."""
        out_of_line = self.out_of_line
        data = references.dumps(value, out_of_line=out_of_line)
        return data, tuple(sorted(out_of_line.referenced)) if out_of_line is not None else ()

    def _explain_too_large(self, error: StateTooLargeError) -> StateTooLargeError:
        """`error` with the checkpoint it was at, the largest live values, and what to do."""
        frames = self.stack.all_frames()
        values = largest_live_values(frames)
        # Values of a few hundred bytes beside the ones that matter are noise.
        values = values[:1] + [(place, size) for place, size in values[1:] if size >= 1024]
        largest = "; ".join(f"{place}: {readable_size(size)}" for place, size in values)
        at = ""
        if frames:
            innermost = frames[-1]
            at = f" at {innermost.code.module}.{innermost.code.qualname} line {innermost.record().line}"
        return StateTooLargeError(
            f"instance {error.instance_id!r}: the state to save{at} is {readable_size(error.size)}, "
            f"more than max_state_bytes ({readable_size(error.limit)}); nothing was written and the "
            f"instance stays at its last write. Largest live values: {largest or 'none'}. "
            "Keep a large value out of the state: store it with a step (a file, an object "
            "store, a table) and keep only its key — durable.Stored(load, key) loads it "
            "again when used — or `del` it once used, before the checkpoint; or give "
            "DurableBackend(max_state_bytes=...) a larger limit",
            instance_id=error.instance_id,
            size=error.size,
            limit=error.limit,
        )

    def _add_snapshot(self, fields: dict[str, Any], changes: dict[str, Any]) -> None:
        """Put a snapshot of the call stack in the write, and prune the journal to what a
        resume from it reads."""
        fields["snapshot"], changes["prune_below"] = self._take_snapshot()
        fields["next_seq"] = self.next_seq
        stack = self.stack
        written = self.written_versions
        for frame in stack.all_frames():
            if frame.code.fingerprint not in written:
                versions = stack.code_versions()
                changes["code_versions"] = {f: v for f, v in versions.items() if f not in written}
                written.update(versions)
                break

    def _hand_over(self, unsettled: Any) -> None:
        self.unsettled_writes.append(unsettled)
        if isinstance(unsettled, asyncio.Future):
            in_flight = self.writes_in_flight
            if len(in_flight) > 64:
                in_flight[:] = [write for write in in_flight if not write.done()]
            in_flight.append(unsettled)

    async def settle_writes(self) -> None:
        """Wait until every write made so far is durable (only group-committing stores
        leave any unsettled)."""
        while self.unsettled_writes:
            unsettled = self.unsettled_writes.pop(0)
            is_future = isinstance(unsettled, asyncio.Future)
            # A store's future that says it cannot be cancelled (a group commit's) commits
            # whatever this task does: awaited as it is, a cancellation is told once it has.
            uncancellable = is_future and getattr(unsettled, "cancellable", True) is False
            try:
                if uncancellable:
                    await unsettled
                else:
                    # Shielded: a fan-out branch cancelled while it waits must not cancel
                    # its write, which commits anyway (`drain_writes` waits for it at the end).
                    await (asyncio.shield(unsettled) if is_future else unsettled)
                if self.out_of_line is not None:
                    self.out_of_line.settled(unsettled)
            except asyncio.CancelledError:
                if uncancellable and unsettled.done():
                    # Cancelled while its write committed: the write has settled, and only
                    # this task stops (as a branch whose shielded write is still committing).
                    failure = unsettled.exception()
                    if failure is not None:
                        self.stop_at_failed_write(failure)
                    elif self.out_of_line is not None:
                        self.out_of_line.settled(unsettled)
                elif not (is_future and not unsettled.done()):
                    self.stop_at_failed_write(asyncio.CancelledError())
                raise  # else only this task was cancelled: the write goes on
            except BaseException as error:
                self.stop_at_failed_write(error)
                raise

    async def drain_writes(self) -> None:
        """Wait for every write this run handed to the store to commit or fail, whoever was
        waiting for it: a write still queued when the run stopped (a fan-out branch cancelled
        after another's write failed) must not land after the next runner has read the state."""
        pending = [write for write in self.writes_in_flight if not write.done()]
        self.writes_in_flight.clear()
        if pending:
            await asyncio.wait(pending)
        for write in pending:
            if not write.cancelled():
                write.exception()  # retrieved: the failure that matters was raised already

    def _take_snapshot(self) -> tuple[tuple[Any, ...] | bytes, int]:
        """A snapshot of the call stack, and the sequence number below which the journal is
        pruned now: a resume from the snapshot reads nothing older."""
        stack = self.stack
        self.operations_since_snapshot = 0
        out_of_line = self.out_of_line
        try:
            snapshot = stack.snapshot(out_of_line)
        except CheckpointException:
            # A failed call is kept in the snapshot so that a retry can run it again; one
            # that cannot be pickled is left out (the retry then re-raises its failure).
            if not _forget_failed_calls(stack):
                raise
            snapshot = stack.snapshot(out_of_line)
        if out_of_line is not None:
            self.snapshot_blob_keys = set(out_of_line.referenced)
        if (
            out_of_line is None
            and type(snapshot) is bytes
            and len(snapshot) >= out_of_line_settings.LARGE_STATE
            and out_of_line_settings.ENABLED
        ):
            # A large state: from the next snapshot on, its large values go out of line.
            self.out_of_line = OutOfLine()
        return snapshot, self._prune(stack.journal_floor(self.next_seq) - self.policy.keep_history)

    def _prune(self, below: int) -> int:
        """Drop journal entries older than `below` (returned, for the write to say so)."""
        journal = self.journal
        for seq in tuple(journal):
            if seq < below:
                del journal[seq]
        return below

    def full_state(self) -> dict[str, Any]:
        """The whole state as of the last write (what `OrchestrationBackend.save_state` gets),
        with the blobs its snapshot refers to."""
        versions = self.stack.code_versions() if self.fields.get("snapshot") else {}
        state = {
            **self.fields,
            "journal": dict(self.journal),
            "code_versions": versions,
            "history": self.history.stored(self.fields.get("updated_at")),
        }
        if self.out_of_line is not None:
            state["blobs"] = self.out_of_line.live_blobs()
            self.compacting = True
        return state

    def complete(self, value: Any) -> None:
        try:
            result = cloudpickle.dumps(value)
        except Exception as error:
            raise CheckpointException(
                f"instance {self.instance_id!r}: the result of {self.program.code.qualname} "
                f"({type(value).__name__}) cannot be pickled ({error}); return a picklable value"
            ) from error
        self._write(COMPLETED, snapshot=False, changes={"set": {"result": result}})

    def fail(self, error: BaseException) -> None:
        self._write(
            FAILED, snapshot=False, changes={"set": {"error": references.pickle_error(error)}}
        )


class _Driver:
    """Drives the root coroutine like `await`, but stops it where a wait point parks it."""

    def __init__(self, coroutine, run: InstanceRun) -> None:
        self.coroutine = coroutine
        self.run = run
        self.parked = False

    def __await__(self):
        coroutine = self.coroutine
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                yielded = coroutine.throw(error) if error is not None else coroutine.send(value)
            except StopIteration as stop:
                return stop.value
            if yielded is PARK:
                self.parked = True
                self.run.closing = True
                self.run.close_unstarted_coroutines()
                coroutine.close()
                return None
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as thrown:
                value, error = None, thrown


class DurableRuntime:
    """Runs the instances of one backend; at most one run per instance id at a time here."""

    def __init__(self, backend: OrchestrationBackend) -> None:
        self.backend = backend
        self._active: set[str] = set()
        self._runs: dict[str, InstanceRun] = {}
        #: A durable ``sleep`` with more than this many seconds left parks the instance
        #: (status ``sleeping``, `InstanceSleeping` to the caller) instead of sleeping in
        #: its run; None (the default, for direct calls) sleeps in place. A worker sets it.
        self.park_sleeps_after: float | None = None

    def request_cancel(self, instance_id: str, reason: str | None) -> bool:
        """Raise `Cancelled` in the run of `instance_id` at its next checkpoint when this
        runtime is running it (True), else False."""
        run = self._runs.get(instance_id)
        if run is None:
            return False
        run.request_cancel(reason)
        return True

    def request_stop(self) -> None:
        """Ask every run of this runtime to stop before its next durable operation (the one
        in progress finishes and is journaled); each then raises `RunStoppedError`."""
        for run in self._runs.values():
            run.stop_requested = run.shutting_down = True

    def abandon(self) -> None:
        """Mark every run as stopping where it is, as a crash would: cancelling their tasks
        after this runs none of the user's handlers or finally blocks (for a shutdown that
        cannot wait for an operation in progress, such as a long `sleep`)."""
        for run in self._runs.values():
            run.closing = True

    async def resume_stored(self, instance_id: str, state: dict[str, Any] | None = None) -> Any:
        """Run (or resume) a stored instance with the arguments it was started with, as a
        worker does: it needs only the id, the state names the function. `state`, when the
        caller has just read it, saves reading it again (only its function and arguments,
        which never change, are taken from it)."""
        if state is None:
            state = await answered(self.backend.read_state(validate_instance_id(instance_id)))
        if state is None:
            raise DurableError(f"instance {instance_id!r} does not exist in {self.backend!r}")
        program = program_for_key(state["program"])
        arguments = cloudpickle.loads(state["arguments"])
        return await self.run(program, instance_id, (), {}, bound=arguments)

    async def run(
        self,
        program: DurableProgram[..., Any],
        instance_id: str | None,
        args: tuple[Any, ...],
        kwargs: dict[Any, Any],
        *,
        bound: tuple[Any, ...] | None = None,
    ) -> Any:
        instance_id = (
            validate_instance_id(instance_id) if instance_id is not None else uuid.uuid4().hex
        )
        with self._sole_runner(instance_id):
            traced = tracer()
            if traced is None:
                return await self._run(program, instance_id, args, kwargs, bound)
            with run_span(traced, instance_id, program.key, None):
                return await self._run(program, instance_id, args, kwargs, bound, traced)

    @contextmanager
    def _sole_runner(self, instance_id: str):
        """Be the one runner of `instance_id`: in this process (another task of this runtime)
        and across processes (the backend's lease)."""
        if instance_id in self._active:
            raise InstanceBusyError(
                f"instance {instance_id!r} is already being run or started in this process; "
                "wait for that call to finish (an instance has one runner at a time)"
            )
        holder = self.backend.acquire_instance(instance_id)
        if holder is not None:
            raise InstanceBusyError(
                f"instance {instance_id!r} is being run by another runner ({holder}); wait "
                "until it pauses or ends (a runner's lease ends with its process)"
            )
        self._active.add(instance_id)
        try:
            yield
        finally:
            self._active.discard(instance_id)
            self.backend.release_instance(instance_id)

    async def _new_run(
        self, program, instance_id: str, arguments: tuple[Any, ...], blob: bytes, status: str
    ) -> InstanceRun:
        """Create `instance_id`: its first write, durable when this returns."""
        run = InstanceRun(self.backend, instance_id, program, blob, time.time())
        run.stack.push(FunctionCall(program, run, arguments=arguments))
        run.start(status)
        await run.settle_writes()
        return run

    async def start(
        self,
        program: DurableProgram[..., Any],
        instance_id: str,
        args: tuple[Any, ...],
        kwargs: dict[Any, Any],
    ) -> bool:
        """Save a new instance without running it: True when it was created, False when it
        exists already with the same arguments (`ArgumentsMismatchError` with others)."""
        validate_instance_id(instance_id)
        arguments = program.code.bind(*args, **kwargs)
        arguments_blob = _pickle_arguments(program, arguments)
        state = await answered(self.backend.read_state(instance_id))
        if state is not None:
            # Exists already: no lease needed to say so (it may be running elsewhere).
            _check_identity(program, instance_id, state, arguments, arguments_blob)
            return False
        with self._sole_runner(instance_id):
            state = await answered(self.backend.read_state(instance_id))  # started meanwhile?
            if state is not None:
                _check_identity(program, instance_id, state, arguments, arguments_blob)
                return False
            await self._new_run(program, instance_id, arguments, arguments_blob, ENQUEUED)
            return True

    async def _run(
        self,
        program,
        instance_id: str,
        args: tuple[Any, ...],
        kwargs: dict[Any, Any],
        bound: tuple[Any, ...] | None = None,
        traced: Any = None,
    ) -> Any:
        arguments = program.code.bind(*args, **kwargs) if bound is None else bound
        arguments_blob = _pickle_arguments(program, arguments)
        with _from_store(instance_id):
            state = await answered(self.backend.load_state(instance_id))
        if state is None:
            run = await self._new_run(program, instance_id, arguments, arguments_blob, RUNNING)
            logger.info("instance %r started (%s)", instance_id, program.key)
        else:
            run = await self._reopen(program, instance_id, state, arguments, arguments_blob)
            if run is None:
                return _stored_outcome(state)
            logger.info("instance %r %s", instance_id, _RESUMED.get(state["status"], "resumed"))
        run.park_sleeps_after = self.park_sleeps_after
        run.tracer = traced
        root = run.stack.frames[0]
        driver = _Driver(root.start(), run)
        token = enter_run(run)
        self._runs[instance_id] = run
        try:
            value = await driver
        except CheckpointException:
            raise
        except BaseException as error:
            failed = _failed_write(run)
            if failed is not None:
                # A store write failed: the instance stays at its last good write, and the
                # caller gets that failure itself (not the cancellation it caused).
                if failed is error:
                    raise
                raise failed from None
            if not isinstance(error, Exception):
                raise
            if isinstance(error, PauseForEventException):
                # Compiled code turns its wait points into checkpoints: this one was raised
                # by code that is not a frame, where it cannot resume. Stored as the
                # instance's failure, every later call would raise it again, as if waiting.
                raise _wait_point_outside_frames(error, instance_id) from error
            run.fail(error)
            await run.settle_writes()
            logger.info("instance %r failed: %s", instance_id, error_summary(error))
            raise
        finally:
            self._runs.pop(instance_id, None)
            leave_run(token)
            for task in run.gathered_tasks:
                task.cancel()
            await run.drain_writes()
        if driver.parked:
            if run.stopped:
                raise RunStoppedError(
                    f"instance {instance_id!r} stopped on request before its next durable "
                    "operation; call it again to resume it from its last write"
                )
            if run.sleeping_until is not None:
                logger.info(
                    "instance %r sleeping until %s, holding nothing meanwhile",
                    instance_id,
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(run.sleeping_until)),
                )
                raise InstanceSleeping(run.sleeping_until, instance_id=instance_id)
            logger.info(
                "instance %r paused, waiting for event %r", instance_id, run.waiting_for.event
            )
            raise PauseForEventException(run.waiting_for.event, instance_id=instance_id)
        try:
            run.complete(value)
            await run.settle_writes()
        except BaseException:
            _failed_write(run)
            raise
        logger.info("instance %r completed", instance_id)
        return value

    async def _reopen(
        self, program, instance_id, state, arguments, arguments_blob
    ) -> InstanceRun | None:
        """A run resuming stored `state`, or None when the instance has finished."""
        _check_identity(program, instance_id, state, arguments, arguments_blob)
        status = state["status"]
        if status in (COMPLETED, FAILED):
            return None
        run = InstanceRun(
            self.backend, instance_id, program, state["arguments"], state["created_at"]
        )
        run.fields = {key: value for key, value in state.items() if key not in _NOT_FIELDS}
        journal = run.journal = dict(state.get("journal") or {})
        run.history = _history_of(state, run.policy.history_limit)
        run.next_seq = state["next_seq"]
        if journal and max(journal) >= run.next_seq:
            # Written after the snapshot: taken again by the same branches, in order.
            for seq in sorted(journal):
                if seq >= run.next_seq:
                    run.replay_seqs.setdefault(journal[seq].get("branch"), []).append(seq)
            run.next_seq = max(journal) + 1
        versions = state.get("code_versions") or {}
        run.written_versions = set(versions)
        blobs = state.get("blobs")
        if blobs:
            run.out_of_line = OutOfLine(blobs)
        if run.out_of_line is not None:
            run.out_of_line.begin()  # to learn the keys the snapshot refers to
        run.stack = CallStack.from_snapshot(state["snapshot"], run, versions)
        if run.out_of_line is not None:
            run.snapshot_blob_keys = set(run.out_of_line.referenced)
        try:
            if run.look_for_cancel_at is not None:
                run.look_for_cancel()
            if status == WAITING and not run.cancel_pending:
                waits = _parked_waits(run)
                if waits:
                    delivered = False
                    for waiting in waits:
                        with _from_store(instance_id):
                            event = await ask_for_event(self.backend, instance_id, waiting.event)
                        if event is not None:
                            waiting.delivered, delivered = event, True
                    deadline = state.get("deadline")
                    if not delivered and (deadline is None or time.time() < deadline):
                        raise PauseForEventException(waits[0].event, instance_id=instance_id)
        except BaseException:
            # Still waiting, or the store failed to answer: loaded, not run. The coroutines
            # the snapshot made are made again next time, so these are not "never awaited".
            run.close_unstarted_coroutines()
            raise
        return run


_NOT_FIELDS = ("journal", "code_versions", "history", "blobs")
#: Bytes of blobs no snapshot refers to that a log may hold (beyond as many as it refers
#: to) before a write rewrites it without them.
_BLOB_GARBAGE_BYTES = 1 << 20

#: What resuming an instance of each stored status is, for the log.
_RESUMED = {
    ENQUEUED: "started (it was enqueued)",
    RUNNING: "resumed from its last write (it was running: its runner stopped or died)",
    WAITING: "resumed (its event arrived, its deadline passed, or it was cancelled)",
    SLEEPING: "resumed (its sleep is over, or it was cancelled)",
}


def _history_of(state: dict[str, Any], limit: int) -> History:
    """The history a stored state holds (folded records give a `History`, a whole state
    its rows)."""
    history = state.get("history")
    if isinstance(history, History):
        history.limit = limit
        return history
    return History(history, limit)


def _forget_failed_calls(stack: CallStack) -> bool:
    """Drop the failed calls kept at the frames' places (see `Execute.outcome_entry`);
    whether there were any."""
    forgot = False
    for frame in stack.all_frames():
        pending = frame.pending
        places = pending.members if isinstance(pending, Gathering) else [pending]
        for place in places:
            if isinstance(place, AtOperation) and getattr(place.operation, "failed", False):
                place.operation = None
                forgot = True
    return forgot


def readable_size(size: int) -> str:
    """`size` bytes, for a message."""
    return f"{size / (1 << 20):.1f} MiB" if size >= 1 << 20 else f"{size:,} bytes"


def _failed_write(run: InstanceRun) -> BaseException | None:
    """The failure of a store write that stopped `run`, if one did, noted with what it
    means for the instance (a checkpoint refused, too large, is the program's, not the
    store's)."""
    failed = run.failed_write
    if isinstance(failed, Exception) and not isinstance(failed, CheckpointException):
        _note_store_failure(failed, run.instance_id)
    return failed


def _note_store_failure(error: Exception, instance_id: str) -> None:
    """Mark `error`, raised by the store, as the store's failure, not the workflow's."""
    error.durable_write_failed = True  # a worker retries it later, with backoff
    note = (
        f"durable: instance {instance_id!r} stays at its last good write; call it again "
        "once the store can be read and written"
    )
    if note not in getattr(error, "__notes__", ()):
        error.add_note(note)


@contextmanager
def _from_store(instance_id: str, run: InstanceRun | None = None):
    """A read of the store by the runtime (not by the workflow): its failure — the store
    unreachable, its server restarting — is the store's, as a failed write is. A run in
    progress stops at its last write; the error is marked so that a worker tries again
    later rather than take the instance for one it cannot run."""
    try:
        yield
    except Exception as error:
        if run is not None:
            run.stop_at_failed_write(error)
        _note_store_failure(error, instance_id)
        raise


async def answered(value: Any) -> Any:
    """What a backend method returned; awaited when the backend's methods are async."""
    return await value if inspect.isawaitable(value) else value


def _parked_waits(run: InstanceRun) -> list[WaitForEvent]:
    """The wait points the saved call stack is parked at, in the order of its frames."""
    waits = []
    for frame in run.stack.all_frames():
        pending = frame.pending
        places = pending.members if isinstance(pending, Gathering) else [pending]
        for place in places:
            if (
                isinstance(place, AtOperation)
                and isinstance(place.operation, WaitForEvent)
                and place.seq not in run.journal
            ):
                waits.append(place.operation)
    return waits


def _check_identity(
    program, instance_id: str, state, arguments: tuple[Any, ...], blob: bytes
) -> None:
    """Refuse stored state of another format, another function or other arguments."""
    if state.get("format_version") != STATE_FORMAT:
        raise StateFormatError(
            f"instance {instance_id!r} was saved in state format "
            f"{state.get('format_version')!r}; this version reads format {STATE_FORMAT}"
        )
    if state["program"] != program.key:
        raise ArgumentsMismatchError(
            f"instance {instance_id!r} belongs to durable function {state['program']!r}, "
            f"not {program.key!r}; use another instance_id"
        )
    if state["arguments_digest"] != _digest(blob) and not _same_arguments(
        state["arguments"], arguments
    ):
        stored = cloudpickle.loads(state["arguments"])
        raise ArgumentsMismatchError(
            f"instance {instance_id!r} was started with arguments {stored!r}, but was "
            f"called with {arguments!r}; call it with its original arguments, or use "
            "a new instance_id"
        )


def _pickle_arguments(program, arguments: tuple[Any, ...]) -> bytes:
    try:
        return pickle.dumps(arguments, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass  # lambdas, local classes and the like: cloudpickle pickles them by value
    try:
        return cloudpickle.dumps(arguments, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise CheckpointException(
            f"the arguments of {program.code.qualname} cannot be pickled ({error}); a durable "
            "function's arguments are saved with its instance"
        ) from error


def _same_arguments(stored_blob: bytes, arguments: tuple[Any, ...]) -> bool:
    try:
        return bool(cloudpickle.loads(stored_blob) == arguments)
    except Exception:
        return False


def _stored_outcome(state: dict[str, Any]) -> Any:
    if state["status"] == COMPLETED:
        return cloudpickle.loads(state["result"])
    raise references.loads(state["error"])


def _close_unstarted(values: list[Any]) -> None:
    """Close the unstarted coroutines among `values` and inside the lists, tuples, sets and
    dicts they hold (`pending = [fetch(a), fetch(b)]`). Only small containers are looked
    into, two levels down: a run stopping must not walk a large state (a coroutine left
    deeper is only reported as never awaited)."""
    found = [(value, 0) for value in values]
    seen: set[int] = set()
    while found:
        value, depth = found.pop()
        kind = type(value)
        if kind is CoroutineType:
            if inspect.getcoroutinestate(value) == inspect.CORO_CREATED:
                value.close()
        elif (
            kind in _CONTAINERS
            and depth < 2
            and len(value) <= _CONTAINER_ITEMS
            and id(value) not in seen
        ):
            seen.add(id(value))
            found.extend((item, depth + 1) for item in (value.values() if kind is dict else value))


_CONTAINERS = frozenset({list, tuple, set, frozenset, dict})
#: The most items of a container looked into for coroutines as a run stops.
_CONTAINER_ITEMS = 256


def _wait_point_outside_frames(
    error: PauseForEventException, instance_id: str
) -> CheckpointException:
    """The error for a `raise PauseForEventException(...)` that reached the instance's top
    from code that is not a frame (a helper that does not compile, a plain function)."""
    traceback = error.__traceback__
    while traceback is not None and traceback.tb_next is not None:
        traceback = traceback.tb_next
    where, failure = "code that is not a frame of the instance", None
    if traceback is not None:
        code = traceback.tb_frame.f_code
        where = f"{code.co_qualname}() at {code.co_filename}:{traceback.tb_lineno}"
        failure = compile_failures.get(code)
    message = (
        f"raise PauseForEventException({error.event!r}) in {where} escaped durable instance "
        f"{instance_id!r}: it is a wait point only in a durable function or a helper that "
        "compiles, and "
    )
    if failure is not None:
        message += (
            f"this function runs plainly because it cannot be compiled as a helper:\n{failure}"
        )
    else:
        message += (
            "this code is not one (a plain function, or a coroutine that is not a frame); "
            "wait there with `await wait_for_event(...)` in a helper, or move the wait point "
            "into the durable function. The instance stays at its last write"
        )
    return CheckpointException(message)
