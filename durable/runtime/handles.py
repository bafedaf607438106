"""Handles: a started instance seen from anywhere — its status, and its result once it ends.

A handle only reads stored state, so it works from another process (over the same store) and
never disturbs the run it watches.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from .._errors import DurableError
from .._ids import validate_instance_id
from . import references
from .frames import FrameView, saved_frames
from .runtime import COMPLETED, FAILED, STATUSES, WAITING, answered

if TYPE_CHECKING:
    from .backend import OrchestrationBackend

R = TypeVar("R")


class InstanceHandle(Generic[R]):
    """One instance of a durable function in one backend (``program.start`` returns one).

    ``InstanceHandle[R]``: `result` returns the function's return type ``R``.
    """

    def __init__(self, instance_id: str, backend: OrchestrationBackend) -> None:
        self.instance_id: str = validate_instance_id(instance_id)
        self.backend: OrchestrationBackend = backend

    def __repr__(self) -> str:
        return f"<InstanceHandle {self.instance_id!r} in {self.backend!r}>"

    def status(self) -> str | None:
        """``enqueued``, ``running``, ``waiting`` (for an event), ``sleeping`` (parked until
        a durable timer's deadline), ``completed``, ``failed``, or None for an instance the
        backend does not know."""
        state = self.backend.read_state(self.instance_id)
        if inspect.isawaitable(state):
            state.close()
            raise TypeError(
                f"{type(self.backend).__name__}.read_state is async: use "
                "'await handle.status_async()'"
            )
        return None if state is None else state["status"]

    async def status_async(self) -> str | None:
        """`status`, for any backend (one whose methods are async too)."""
        state = await answered(self.backend.read_state(self.instance_id))
        return None if state is None else state["status"]

    def delete(self) -> bool:
        """Forget the instance (`DurableBackend.delete_instance`): False when it does not
        exist, `InstanceBusyError` while a runner holds it."""
        return self._operator("delete_instance")(self.instance_id)

    def cancel(self, reason: str | None = None) -> str:
        """Cancel the instance (`DurableBackend.cancel_instance`): `Cancelled` is raised in
        it at its next checkpoint, at once when it is parked. Returns the status it had."""
        return self._operator("cancel_instance")(self.instance_id, reason)

    def retry(self) -> list[int]:
        """Run the failed instance again from its last snapshot (`operate.retry_instance`):
        its failed calls run again, earlier ones are not repeated. A worker (or the next
        call) runs it; the sequence numbers of the calls run again are returned."""
        from .operate import retry_instance

        return retry_instance(self._durable_backend("retry"), self.instance_id)

    def fork(self, new_id: str, *, at: int | None = None) -> InstanceHandle[R]:
        """A new instance `new_id` from this one's latest snapshot, or the one taken at its
        durable operation `at` (`operate.fork_instance`), sharing nothing with it
        afterwards; its handle."""
        from .operate import fork_instance

        fork_instance(self._durable_backend("fork"), self.instance_id, new_id, at=at)
        return InstanceHandle(new_id, self.backend)

    def edit(self, frame: int, **values: Any) -> None:
        """Set live locals of frame `frame` (0 is the outermost) of the paused instance
        (`operate.edit_instance`): ``handle.edit(0, limit=500)``. Audited in its history."""
        from .operate import edit_instance

        edit_instance(self._durable_backend("edit"), self.instance_id, frame, values)

    def frames(self, *, loads: Callable[[bytes], Any] | None = None) -> list[FrameView]:
        """The saved call stack, outermost first: per frame its function, resume line, live
        locals and what it awaits (empty for a completed instance). `loads` unpickles the
        stored values (`durable.runtime.safe_pickle.safe_loads` shows an untrusted store
        without running it)."""
        state = self._state(loads)
        return saved_frames(state.get("snapshot"), loads or references.loads, state.get("blobs"))

    def history(self) -> list[dict[str, Any]]:
        """The timeline (`history.timeline`): a summary per durable operation (sequence
        number, kind, function, status, attempts, start, end, duration, error) and the
        operator's changes, oldest first."""
        from .history import timeline

        return timeline(self._state(None))

    def _state(self, loads: Callable[[bytes], Any] | None) -> dict[str, Any]:
        options = {} if loads is None else {"loads": loads}
        state = self._durable_backend("read").read_state(self.instance_id, **options)
        if state is None:
            raise DurableError(f"instance {self.instance_id!r} does not exist in {self.backend!r}")
        return state

    def _durable_backend(self, what: str) -> Any:
        if not hasattr(self.backend, "store") or getattr(self.backend.store, "whole_state", False):
            raise TypeError(
                f"{self.backend!r} cannot {what} instances: that needs a DurableBackend over a "
                "store of records (memory, disk, SQLite)"
            )
        return self.backend

    def _operator(self, name: str) -> Callable[..., Any]:
        operation = getattr(self.backend, name, None)
        if operation is None:
            raise TypeError(
                f"{self.backend!r} cannot {name.split('_')[0]} instances: that needs a "
                "DurableBackend"
            )
        return operation

    def done(self) -> bool:
        """Whether the instance has ended (completed or failed)."""
        return self.status() in (COMPLETED, FAILED)

    async def result(self, *, timeout: float | None = None, poll_interval: float = 0.05) -> R:
        """Wait until the instance ends, then return its result or raise its exception.

        The instance is run elsewhere (a call of the program, a worker); this only watches
        the store, every `poll_interval` seconds. `TimeoutError` after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await answered(self.backend.read_state(self.instance_id))
            if state is None:
                raise DurableError(
                    f"instance {self.instance_id!r} does not exist in {self.backend!r}; start "
                    "it first (program.start(..., instance_id=...))"
                )
            if state["status"] == COMPLETED:
                return cast(R, references.loads(state["result"]))
            if state["status"] == FAILED:
                raise references.loads(state["error"])
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"instance {self.instance_id!r} is still {state['status']} after {timeout} s"
                )
            await asyncio.sleep(poll_interval)


@dataclass(frozen=True, slots=True)
class InstanceInfo:
    """One line of `list_instances`: what an instance is and where it stands."""

    instance_id: str
    #: The durable function's ``module:qualname``.
    program: str
    status: str
    #: The events a waiting instance waits for (empty otherwise).
    waiting_for: tuple[str, ...]
    #: When a waiting instance times out (epoch seconds), or None.
    deadline: float | None
    created_at: float | None
    updated_at: float | None


def list_instances(
    backend: OrchestrationBackend | None = None,
    *,
    status: str | Iterable[str] | None = None,
    program: str | None = None,
    limit: int | None = None,
    loads: Callable[[bytes], Any] | None = None,
    on_unreadable: Callable[[str, Exception], None] | None = None,
) -> list[InstanceInfo]:
    """The instances of `backend`'s store (the default backend's without one), newest first:
    those of a `status` (one or several) and a `program` (its ``module:qualname``, its
    module or its name), at most `limit`. Each instance's state is read (`loads` unpickles
    its records, as for `DurableBackend.read_state`). An instance whose state cannot be read
    raises its error, or with `on_unreadable` is handed to it (id, error) and left out."""
    backend = _given_or_default(backend)
    store = getattr(backend, "store", None)
    if store is None or getattr(store, "whole_state", False):
        raise TypeError(
            f"{backend!r} cannot list its instances: listing needs a DurableBackend over a "
            "store of records (memory, disk, SQLite)"
        )
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 (or None for all), got {limit!r}")
    statuses = {status} if isinstance(status, str) else set(status) if status else None
    unknown = (statuses or set()) - set(STATUSES)
    if unknown:
        raise ValueError(
            f"unknown status {', '.join(map(repr, sorted(unknown)))}; a status is one of "
            f"{', '.join(STATUSES)}"
        )
    options = {} if loads is None else {"loads": loads}
    found = []
    for instance_id in store.list_instances():
        try:
            state = backend.read_state(instance_id, **options)
            if state is None:
                continue  # deleted meanwhile
            info = _info(instance_id, state)
        except Exception as error:
            if on_unreadable is None:
                raise
            on_unreadable(instance_id, error)
            continue
        if statuses is not None and info.status not in statuses:
            continue
        if program is not None and program not in (info.program, *info.program.split(":", 1)):
            continue
        found.append(info)
    found.sort(key=lambda info: (info.created_at or 0.0, info.instance_id), reverse=True)
    return found if limit is None else found[:limit]


def _info(instance_id: str, state: dict[str, Any]) -> InstanceInfo:
    status = state.get("status")
    if status not in STATUSES:
        raise ValueError(f"its state has no known status ({status!r})")
    waiting: tuple[str, ...] = ()
    if status == WAITING:
        waiting = tuple(state.get("waiting_events") or [state.get("waiting_for")])
    return InstanceInfo(
        instance_id,
        str(state.get("program")),
        str(status),
        tuple(name for name in waiting if isinstance(name, str)),
        _seconds(state.get("deadline")),
        _seconds(state.get("created_at")),
        _seconds(state.get("updated_at")),
    )


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def prune_instances(
    backend: OrchestrationBackend | None = None,
    *,
    older_than: float,
    status: str | Iterable[str] = (COMPLETED, FAILED),
    dry_run: bool = False,
    loads: Callable[[bytes], Any] | None = None,
) -> list[str]:
    """Delete the instances of a `status` (completed and failed by default) last written
    more than `older_than` seconds ago; the ids deleted (to be deleted, with `dry_run`).
    An instance a runner holds meanwhile is left for the next prune; `loads` reads the
    states, as for `list_instances`."""
    from .._errors import InstanceBusyError

    if not isinstance(older_than, int | float) or isinstance(older_than, bool) or older_than < 0:
        raise ValueError(f"older_than must be a number of seconds >= 0, got {older_than!r}")
    backend = _given_or_default(backend)
    before = time.time() - older_than
    due = [
        info.instance_id
        for info in list_instances(backend, status=status, loads=loads)
        if info.updated_at is not None and info.updated_at < before
    ]
    if dry_run:
        return due
    deleted = []
    for instance_id in due:
        try:
            if backend.delete_instance(instance_id):
                deleted.append(instance_id)
        except InstanceBusyError:
            continue
    return deleted


def _given_or_default(backend: OrchestrationBackend | None) -> OrchestrationBackend:
    from .backend import given_or_default

    return given_or_default(backend)
