"""An operator's changes to a stored instance between its runs: retry a failed one, fork one
into a new instance, edit a live local of a paused one.

Each change holds the instance's lease (never under a runner), is one durable write, and is
recorded in the instance's audit trail (`audit_trail`), which its history shows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import DurableError, InstanceEndedError
from .._ids import validate_instance_id
from . import references
from .frames import AtOperation, Branch, FrameRecord, Gathering, saved_stack
from .journal import FAILED, entry_status
from .runtime import COMPLETED, ENQUEUED, RUNNING, SLEEPING, WAITING
from .runtime import FAILED as FAILED_STATUS

if TYPE_CHECKING:
    from .backend import DurableBackend

#: Statuses whose saved call stack an edit may change (a running one only once its runner
#: is gone: the lease says so).
EDITABLE = (ENQUEUED, RUNNING, WAITING, SLEEPING, FAILED_STATUS)


def retry_instance(backend: DurableBackend, instance_id: str) -> list[int]:
    """Run a failed instance again from its last snapshot: the durable calls that failed
    where it stopped run again (their failed outcomes are dropped), earlier ones are not
    repeated. The instance becomes ``enqueued``, for a worker or the next call to run.
    Returns the journal sequence numbers of the calls that run again."""

    def change() -> list[int]:
        with backend._between_runs(instance_id, "retry"):
            state = _load(backend, instance_id, "retry")
            if state["status"] != FAILED_STATUS:
                raise DurableError(
                    f"instance {instance_id!r} is {state['status']}, not failed; only a failed "
                    "instance is retried (cancel a running one first)"
                )
            _needs_snapshot(instance_id, state, "retried")
            again = _failed_calls(state)
            changes = {
                "set": {**_runnable_again(), **_audited(state, "retry", {"again": again})},
                "drop": again,
            }
            _save(backend, instance_id, state, changes)
            return again

    return _outside_event_loop(change)


def fork_instance(
    backend: DurableBackend, instance_id: str, new_id: str, *, at: int | None = None
) -> str:
    """A new instance `new_id` from the latest snapshot of `instance_id` (or, with `at`,
    the one taken when its durable operation `at` was journaled, while its log still holds
    it: `DurableBackend.state_at`): the same call stack, live locals and journal, sharing
    nothing with it afterwards (its own events, leases and history). A failed instance's
    fork runs its failed calls again, as `retry` would; a waiting or sleeping one's waits
    on; a fork from an earlier snapshot runs the operations after it again. Returns the
    fork's status."""
    validate_instance_id(new_id)
    if new_id == instance_id:
        raise ValueError("a fork needs a new instance id, not the one it is forked from")

    if at is not None and (not isinstance(at, int) or isinstance(at, bool) or at < 1):
        raise ValueError(f"at must be a durable operation's sequence number >= 1, got {at!r}")

    def change() -> str:
        if at is None:
            state = _load(backend, instance_id, "fork")
        else:
            state = backend.state_at(validate_instance_id(instance_id), at)
        if state["status"] == COMPLETED:
            raise InstanceEndedError(
                f"instance {instance_id!r} has completed; a completed instance keeps no call "
                "stack to fork"
            )
        _needs_snapshot(instance_id, state, "forked")
        with backend._between_runs(new_id, "fork into"):
            if backend.read_state(new_id) is not None or backend.store.read_events(new_id):
                raise DurableError(
                    f"instance {new_id!r} exists already; fork into an id no instance has"
                )
            fork = dict(state)
            journal = dict(fork.get("journal") or {})
            if state["status"] in (FAILED_STATUS, RUNNING, ENQUEUED):
                for seq in _failed_calls(state) if state["status"] == FAILED_STATUS else ():
                    journal.pop(seq, None)
                fork.update(_runnable_again())
            fork["journal"] = journal
            now = time.time()
            fork.update(instance_id=new_id, created_at=now, updated_at=now)
            where = at if at is not None else state.get("next_seq")
            fork["audit"] = [_entry("forked", {"from": instance_id, "at": where})]
            backend.save_state(new_id, fork)
            return fork["status"]

    return _outside_event_loop(change)


def edit_instance(
    backend: DurableBackend, instance_id: str, frame: int, values: dict[str, Any]
) -> None:
    """Set live locals of frame `frame` (0 is the outermost) of a paused instance's saved
    call stack to `values`; it resumes with them. Each name must be live at the frame's
    resume point (a local the code reads after it). Recorded in the audit trail with the
    names changed and the new values' reprs."""
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise ValueError(f"frame must be an int >= 0 (0 is the outermost), got {frame!r}")
    if not values:
        raise ValueError("edit needs at least one name=value to set")

    def change() -> None:
        with backend._between_runs(instance_id, "edit"):
            state = _load(backend, instance_id, "edit")
            if state["status"] not in EDITABLE:
                raise InstanceEndedError(
                    f"instance {instance_id!r} has {state['status']}; only an instance that "
                    "has not ended is edited"
                )
            _needs_snapshot(instance_id, state, "edited")
            stack_format, records = saved_stack(
                state["snapshot"], references.loads, state.get("blobs")
            )
            records = list(records)
            if frame >= len(records):
                raise ValueError(
                    f"instance {instance_id!r} has {len(records)} frame(s) (0 to "
                    f"{len(records) - 1}); there is no frame {frame}"
                )
            plain = list(records[frame])
            record = FrameRecord.from_plain(tuple(plain))
            unknown = [name for name in values if name not in record.live_locals]
            if unknown:
                live = ", ".join(sorted(record.live_locals)) or "none"
                raise ValueError(
                    f"{', '.join(map(repr, unknown))} is not live in frame {frame} "
                    f"({record.program}) at line {record.line}: its live locals there are "
                    f"{live}; only a value the code reads after that line can be set"
                )
            plain[4] = {**plain[4], **values}
            if plain[7]:
                plain[7] = {n: r for n, r in plain[7].items() if n not in values} or None
            records[frame] = tuple(plain)
            # Pickled whole, its large values inline: the next run takes them out again.
            edited = references.dumps((stack_format, tuple(records)))
            detail = {"frame": frame, "set": {name: repr(v)[:200] for name, v in values.items()}}
            changes = {
                "set": {"snapshot": edited, "blob_keys": (), **_audited(state, "edited", detail)}
            }
            _save(backend, instance_id, state, changes)

    _outside_event_loop(change)


def audit_trail(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The operator's changes recorded in `state`, oldest first: each ``{"at": epoch
    seconds, "action": ..., "detail": {...}}``."""
    return list(state.get("audit") or ())


# -- helpers --------------------------------------------------------------------------------
def _load(backend: DurableBackend, instance_id: str, what: str) -> dict[str, Any]:
    state = backend.load_state(validate_instance_id(instance_id))
    if state is None:
        raise DurableError(f"no instance {instance_id!r} in {backend!r}; nothing to {what}")
    return state


def _needs_snapshot(instance_id: str, state: dict[str, Any], what: str) -> None:
    if state.get("snapshot") is None:
        raise DurableError(
            f"instance {instance_id!r} has no saved call stack to be {what} from (it was "
            "written by a version that dropped the call stack of failed instances)"
        )


def _failed_calls(state: dict[str, Any]) -> list[int]:
    """Sequence numbers of the failed durable calls the saved call stack is stopped at
    (their call kept in the snapshot), which a retry runs again."""
    _, records = saved_stack(state["snapshot"], references.loads, state.get("blobs"))
    journal = state.get("journal") or {}
    return sorted(
        seq
        for seq in _places_with_calls(records)
        if seq in journal
        and entry_status(journal[seq]) == FAILED
        and journal[seq].get("kind", "call") == "call"
    )


def _places_with_calls(records: Any) -> list[int]:
    places = []
    for plain in records:
        pending = FrameRecord.from_plain(plain).pending
        members = pending.members if isinstance(pending, Gathering) else [pending]
        for member in members:
            if isinstance(member, AtOperation) and member.operation is not None:
                places.append(member.seq)
            elif isinstance(member, Branch) and member.records:
                places += _places_with_calls(member.records)
    return places


def _runnable_again() -> dict[str, Any]:
    return {"status": ENQUEUED, "error": None, "waiting_for": None, "deadline": None}


def _entry(action: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"at": time.time(), "action": action, "detail": detail}


def _audited(state: dict[str, Any], action: str, detail: dict[str, Any]) -> dict[str, Any]:
    return {"audit": [*audit_trail(state), _entry(action, detail)], "updated_at": time.time()}


def _save(
    backend: DurableBackend, instance_id: str, state: dict[str, Any], changes: dict[str, Any]
) -> None:
    """One durable write of `changes` to `state`."""
    after = {**state, **changes["set"]}
    dropped = changes.get("drop")
    if dropped:
        after["journal"] = {
            seq: entry for seq, entry in (state.get("journal") or {}).items() if seq not in dropped
        }
    unsettled = backend.save_changes(instance_id, changes, lambda: after)
    if unsettled is not None:
        raise RuntimeError("an operator's write was deferred; it must be made outside a loop")


def _outside_event_loop(change: Callable[[], Any]) -> Any:
    """Run `change` where a store writes at once: here, or in a thread of its own when this
    thread runs an event loop (a group-committing store defers writes made in one)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return change()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(change).result()
