"""Durable operations: nested durable calls, wait points, timers and journaled side effects.

Each operation is an awaitable that compiled code links to the frame awaiting it
(`FunctionCall.at`). Linked, it records what the frame is suspended in and checkpoints;
awaited anywhere else inside a durable run it refuses clearly, because that position could
not be resumed. Outside a durable run the public helpers behave as plain Python.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .._errors import CheckpointException, EventTimeoutError
from .context import current_run
from .frames import (
    AwaitingChild,
    AwaitingEvent,
    Failed,
    FunctionCall,
    Settled,
    Sleeping,
)

if TYPE_CHECKING:
    from .program import DurableProgram


class _Park:
    """Yielded up the await chain to the instance driver, which stops the run there."""

    def __await__(self):
        yield PARK
        raise AssertionError("a parked durable run was resumed in place")


PARK = object()


class Operation(ABC):
    """Base of the awaitables that only work when awaited directly by a durable frame."""

    frame: FunctionCall | None = None

    def _durable_link(self, frame: FunctionCall, resume_point: int) -> None:
        self.frame = frame

    def __await__(self):
        if self.frame is not None:
            return self.execute(self.frame).__await__()
        run = current_run()
        if run is None:
            return self.outside_durable_run().__await__()
        raise CheckpointException(
            f"{self.describe()} was awaited inside durable instance {run.instance_id!r} at a "
            f"position that cannot be resumed ({_where(run)}): inside 'async for', a 'with' "
            "block without resumable(), a generator expression, asyncio.gather/create_task, "
            "or a plain helper coroutine. Await it directly in the durable function (or make "
            "the helper durable too)"
        )

    def describe(self) -> str:
        return type(self).__name__

    @abstractmethod
    async def execute(self, frame: FunctionCall) -> Any:
        """Run the operation for `frame`, which is suspended at its checkpoint."""

    @abstractmethod
    async def outside_durable_run(self) -> Any:
        """What awaiting the operation does when no durable run is active."""


def _where(run) -> str:
    frame = run.stack.innermost if run.stack.frames else None
    if frame is None or frame.python_frame is None:
        return "outside any durable frame"
    return f"in {frame.code.qualname}, near line {frame.python_frame.f_lineno}"


# -- nested durable calls -------------------------------------------------------------------
class ChildCall(Operation):
    """`await child(...)` of a durable function inside another durable run."""

    def __init__(self, program: DurableProgram, args: tuple, kwargs: dict) -> None:
        self.program = program
        self.args = args
        self.kwargs = kwargs

    def describe(self) -> str:
        return f"the durable function {self.program.code.qualname}()"

    async def outside_durable_run(self) -> Any:
        raise RuntimeError(
            f"{self.describe()} was created inside a durable run and awaited after it ended"
        )

    async def execute(self, parent: FunctionCall) -> Any:
        arguments = self.program.code.bind(*self.args, **self.kwargs)
        child = FunctionCall(self.program, parent.run, arguments=arguments)
        parent.pending = AwaitingChild()
        parent.run.stack.push(child)
        parent.run.checkpoint()
        return await run_callee(parent, child)


async def run_callee(parent: FunctionCall, child: FunctionCall) -> Any:
    """Run (or resume) `child` for `parent`; checkpoint its result into the parent's frame."""
    run = parent.run
    try:
        result = await child.code.function(child)
    finally:
        run.stack.pop(child)
    parent.pending = Settled(result)
    run.checkpoint()
    return result


# -- events ---------------------------------------------------------------------------------
class WaitForEvent(Operation):
    """A wait point: consume the event if it is there, otherwise save and stop the run."""

    def __init__(self, event: str, timeout: float | None) -> None:
        if not isinstance(event, str) or not event:
            raise TypeError(f"an event name must be a non-empty string, got {event!r}")
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be None or >= 0 seconds, got {timeout!r}")
        self.event = event
        self.timeout = timeout

    def describe(self) -> str:
        return f"wait_for_event({self.event!r})"

    async def execute(self, frame: FunctionCall) -> Any:
        deadline = None if self.timeout is None else time.time() + self.timeout
        frame.pending = AwaitingEvent(self.event, deadline, self.timeout)
        return await settle_event(frame)

    async def outside_durable_run(self) -> Any:
        raise RuntimeError(
            f"{self.describe()} must be awaited inside a durable function "
            "(one made with make_durable)"
        )


async def settle_event(frame: FunctionCall) -> Any:
    pending = frame.pending
    assert isinstance(pending, AwaitingEvent)
    run = frame.run
    delivered = run.backend.wait_for_event(run.instance_id, pending.name)
    if delivered is not None:
        frame.pending = None
        return delivered.payload
    if pending.deadline is not None and time.time() >= pending.deadline:
        error = EventTimeoutError(pending.name, pending.timeout)
        frame.pending = Failed(error)
        run.checkpoint()
        raise error
    run.checkpoint(waiting_for=pending)
    await _Park()


def wait_for_event(event: str, timeout: float | None = None) -> Awaitable[Any]:
    """Wait durably for `event` sent to this instance; returns the event's payload.

    Awaited directly in a durable function. If the event is already in the inbox it is
    consumed at once; otherwise the instance is saved as waiting and the caller receives
    `PauseForEventException(event)`; calling the instance again after `publish_event`
    resumes here. With `timeout` (seconds), a call made after the deadline without the event
    raises `EventTimeoutError` at this point.
    """
    return WaitForEvent(event, timeout)


# -- timers ---------------------------------------------------------------------------------
class Sleep(Operation):
    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep() needs seconds >= 0, got {seconds!r}")
        self.seconds = seconds

    def describe(self) -> str:
        return f"sleep({self.seconds!r})"

    async def execute(self, frame: FunctionCall) -> None:
        frame.pending = Sleeping(time.time() + self.seconds)
        frame.run.checkpoint()
        await sleep_until_deadline(frame)

    async def outside_durable_run(self) -> None:
        await asyncio.sleep(self.seconds)


async def sleep_until_deadline(frame: FunctionCall) -> None:
    pending = frame.pending
    assert isinstance(pending, Sleeping)
    remaining = pending.deadline - time.time()
    if remaining > 0:
        await asyncio.sleep(remaining)
    frame.pending = None


def sleep(seconds: float) -> Awaitable[None]:
    """A durable timer: the wake-up time is saved, so a restart honours the remaining time."""
    return Sleep(seconds)


# -- journaled side effects -----------------------------------------------------------------
def validate_reconciler(reconciler: Callable[[], Any] | None) -> None:
    if reconciler is None:
        return
    if not callable(reconciler):
        raise TypeError("reconciler must be callable")
    try:
        signature = inspect.signature(reconciler)
    except (TypeError, ValueError):
        return
    required = [
        p
        for p in signature.parameters.values()
        if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if required:
        raise TypeError("reconciler must be a callable that takes no arguments")


class Execute(Operation):
    """`durable_execute(func, ...)`: run a side effect once and keep its outcome."""

    def __init__(self, func, args, kwargs, reconciler, in_thread: bool) -> None:
        validate_reconciler(reconciler)
        if not callable(func):
            raise TypeError(f"durable_execute needs a callable, got {func!r}")
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.reconciler = reconciler
        self.in_thread = in_thread

    def describe(self) -> str:
        return f"durable_execute({getattr(self.func, '__qualname__', self.func)!r})"

    async def call(self) -> Any:
        if self.in_thread and not inspect.iscoroutinefunction(self.func):
            result = await asyncio.to_thread(self.func, *self.args, **self.kwargs)
        else:
            result = self.func(*self.args, **self.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def outside_durable_run(self) -> Any:
        return await self.call()

    async def execute(self, frame: FunctionCall) -> Any:
        try:
            result = await self.call()
        except Exception as error:
            frame.pending = Failed(error)
            frame.run.checkpoint()
            raise
        frame.pending = Settled(result)
        frame.run.checkpoint()
        return result


def durable_execute(
    func: Callable[..., Any],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Awaitable[Any]:
    """Run `func(*args, **kwargs)` (sync or async) once per instance; keep its outcome.

    Awaited directly in a durable function, the result (or exception) is saved with the
    checkpoint, and a resumed instance gets it back without calling `func` again. Outside a
    durable run it is a plain call. `reconciler` is validated and reserved (never passed to
    `func`).
    """
    return Execute(func, args, kwargs, reconciler, in_thread=False)


def durable_execute_async(
    func: Callable[..., Any],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Awaitable[Any]:
    """As `durable_execute`, but a sync `func` runs in a worker thread."""
    return Execute(func, args, kwargs, reconciler, in_thread=True)


# -- resuming -------------------------------------------------------------------------------
async def resume_pending(frame: FunctionCall, resume_point: int) -> Any:
    """Settle the operation `frame` was suspended in when its snapshot was taken."""
    pending = frame.pending
    if isinstance(pending, Settled):
        frame.pending = None
        return pending.value
    if isinstance(pending, Failed):
        frame.pending = None
        raise pending.error
    if isinstance(pending, AwaitingChild):
        return await run_callee(frame, frame.run.stack.callee_of(frame))
    if isinstance(pending, AwaitingEvent):
        return await settle_event(frame)
    if isinstance(pending, Sleeping):
        return await sleep_until_deadline(frame)
    raise CheckpointException(
        f"instance {frame.run.instance_id!r}: {frame.code.qualname} was saved at the "
        f"checkpoint at line {frame.code.line_of(resume_point)} with no operation "
        "in progress; the stored state is inconsistent"
    )
