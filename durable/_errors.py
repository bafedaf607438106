"""Every exception the package raises on purpose.

Each error a user can cause names what was wrong and how to fix it; codes (DUR1xx for the
compiler, DUR2xx for the runtime, DUR3xx for stores) make them searchable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class DurableError(Exception):
    """Base class of the errors raised by ``durable`` itself."""


class PauseForEventException(Exception):
    """A durable function is waiting for the event ``event``.

    Raised *inside* a durable function it marks a wait point: if the event is already in the
    instance's inbox it is consumed and execution continues after the ``raise``; otherwise the
    state is saved and this exception reaches the caller. ``instance_id`` is filled in then.
    """

    def __init__(self, event: str, *, instance_id: str | None = None) -> None:
        super().__init__(event)
        self.event = event
        self.instance_id = instance_id

    def __reduce__(self) -> tuple[Any, tuple[str, str | None]]:
        return (_rebuild_pause, (self.event, self.instance_id))


def _rebuild_pause(event: str, instance_id: str | None) -> PauseForEventException:
    return PauseForEventException(event, instance_id=instance_id)


class InstanceSleeping(PauseForEventException):
    """A run parked its instance in a durable ``sleep`` until `wake_at` (epoch seconds),
    holding nothing while it sleeps. Only a runtime that parks sleeps (a worker's) raises
    it; a worker runs the instance again when it is due. ``event`` is None."""

    def __init__(self, wake_at: float, *, instance_id: str | None = None) -> None:
        Exception.__init__(self, f"sleeping until {wake_at}")
        self.event: str = None  # type: ignore[assignment]
        self.wake_at = wake_at
        self.instance_id = instance_id

    def __reduce__(self) -> tuple[Any, tuple[float, str | None]]:
        return (_rebuild_sleeping, (self.wake_at, self.instance_id))


def _rebuild_sleeping(wake_at: float, instance_id: str | None) -> InstanceSleeping:
    return InstanceSleeping(wake_at, instance_id=instance_id)


class Cancelled(DurableError):
    """The instance was cancelled (``durable cancel``, `InstanceHandle.cancel`).

    Raised inside the durable function at its next checkpoint (at once, when it is parked
    waiting or sleeping), where that checkpoint's operation would have started; ``except``
    and ``finally`` blocks run and may make durable calls. Its delivery is journaled, so a
    crash during the cleanup resumes the cleanup. Not caught, it fails the instance with
    this error. `reason` is what the operator gave, or None.
    """

    def __init__(self, reason: str | None = None) -> None:
        super().__init__("the instance was cancelled" + (f": {reason}" if reason else ""))
        self.reason = reason

    def __reduce__(self) -> tuple[Any, tuple[str | None]]:
        return (Cancelled, (self.reason,))


class AlreadyDurableException(DurableError, TypeError):
    """``make_durable`` was given a function that is already durable."""


class NoSourceCodeException(DurableError):
    """The function's source code cannot be read, so it cannot be compiled."""


class CheckpointException(DurableError):
    """A checkpoint could not be taken, e.g. a live local variable cannot be pickled."""


class StateTooLargeError(CheckpointException):
    """A checkpoint's state is larger than the backend's ``max_state_bytes`` (or than the
    store can hold); nothing of it was written. The message names the largest live values."""

    def __init__(self, message: str, *, instance_id: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.instance_id: str = instance_id
        self.size: int = size
        self.limit: int = limit


class InstanceBusyError(DurableError):
    """The instance is being run by another runner right now."""


class LeaseLostError(InstanceBusyError):
    """A write of an instance was refused because the lease its runner held was taken over
    by another runner (it expired while this one was paused or cut off from the store);
    nothing of the write was stored, and the other runner goes on from the last stored
    write."""


class InstanceEndedError(DurableError):
    """An operator's change (cancel, edit) was asked of an instance that has completed or
    failed already."""


class RunStoppedError(DurableError):
    """The run was asked to stop (`DurableRuntime.request_stop`, a worker shutting down) and
    stopped before its next durable operation; the instance resumes from its last write."""


class ArgumentsMismatchError(DurableError, ValueError):
    """An existing instance was called with arguments other than the ones it started with."""


class CorruptStateError(DurableError):
    """Stored state failed its integrity check and was not loaded."""


class StateFormatError(DurableError):
    """Stored state was written in a format this version cannot read."""


class IncompatibleStateError(DurableError):
    """A saved frame belongs to a different version of the function's code."""


class EventTimeoutError(DurableError, TimeoutError):
    """``wait_for_event(..., timeout=...)`` expired before the event arrived."""

    def __init__(self, event: str, timeout: float) -> None:
        super().__init__(f"event {event!r} did not arrive within {timeout} seconds")
        self.event = event
        self.timeout = timeout

    def __reduce__(self) -> tuple[Any, tuple[str, float]]:
        return (EventTimeoutError, (self.event, self.timeout))


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One compile error: where it is, what it is and how to fix it."""

    code: str
    message: str
    filename: str
    line: int
    column: int
    source_line: str
    hint: str

    def render(self) -> str:
        text = self.source_line.rstrip()
        indent = len(text) - len(text.lstrip())
        caret = " " * max(self.column - indent, 0) + "^"
        return (
            f"{self.filename}:{self.line}:{self.column + 1}: {self.code} {self.message}\n"
            f"    {text.lstrip()}\n    {caret}\n    fix: {self.hint}"
        )


class DurableCompileError(DurableError, SyntaxError):
    """The function uses constructs that cannot be made resumable. Lists every problem."""

    def __init__(self, function: str, diagnostics: list[Diagnostic]) -> None:
        self.function = function
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        count = len(self.diagnostics)
        header = f"cannot make {function!r} durable ({count} error{'s' if count != 1 else ''}):"
        body = "\n".join(d.render() for d in self.diagnostics)
        first = self.diagnostics[0]
        super().__init__(f"{header}\n{body}")
        # SyntaxError fields, so tools that understand them point at the first problem.
        self.filename: str | None = first.filename
        self.lineno: int | None = first.line
        self.offset: int | None = first.column + 1
        self.text: str | None = first.source_line

    def __str__(self) -> str:
        return self.args[0]
