"""Durable operations: journaled side effects, wait points, timers and nested durable calls.

Each operation is an awaitable that compiled code links to the frame awaiting it
(`FunctionCall.at`); linked, it takes the next journal sequence number of its instance and
settles by the reconcile table (DESIGN §5): an outcome in the journal is returned without
running anything, a call in flight at a crash is reconciled or run again, a new call runs
and is journaled. Awaited anywhere else inside a durable run an operation refuses clearly,
because that position could not be resumed; outside a durable run it is plain Python.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import sys
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar, overload

from .._errors import Cancelled, CheckpointException, EventTimeoutError
from ..transform._names import FRAME
from . import references
from .context import current_run, current_slot
from .frames import AtOperation, AwaitingChild, FunctionCall, Gathering, Settled
from .helpers import compile_failures
from .journal import (
    FAILED,
    PENDING,
    SUCCEEDED,
    NotApplied,
    RetryPolicy,
    args_digest,
    digests_match,
    entry_status,
    function_id,
)
from .out_of_line import goes_out_of_line

if TYPE_CHECKING:
    from .program import DurableProgram
    from .runtime import InstanceRun

logger: logging.Logger = logging.getLogger("durable.runtime")

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Event:
    """An event delivered to an instance."""

    name: str
    payload: Any = None


class _Park:
    """Yielded up the await chain to the instance driver, which stops the run there."""

    def __await__(self):
        yield PARK
        raise AssertionError("a parked durable run was resumed in place")


PARK = object()


class Operation(ABC):
    """Base of the awaitables that only work when awaited directly by a durable frame."""

    frame: FunctionCall | None = None
    #: Where the frame records this operation, and its journal sequence number.
    place: AtOperation | Gathering | None = None
    seq: int = 0
    #: Whether the operation has written once (a snapshot goes only with the first write).
    counted: bool = False
    #: The fan-out branch whose frames took the sequence number (None: the instance's own).
    branch: str | None = None
    #: The frame that made a call, until the call is awaited (see `Execute.__del__`).
    caller: FrameType | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled inside a snapshot: the frame link is rebuilt on resume, and a call kept in
        # a variable is awaited then (so it is not "never awaited" when this run stops).
        self.caller = None
        state = dict(self.__dict__)
        state.pop("frame", None)
        state.pop("place", None)
        state.pop("seq", None)
        state.pop("_steps", None)
        state.pop("caller", None)
        return state

    def _durable_link(self, frame: FunctionCall, resume_point: int) -> Awaitable[Any]:
        """Link the operation to `frame`, suspended at it now: what the frame awaits."""
        self.frame = frame
        self.caller = None
        run = frame.run
        branch = frame.stack.branch
        if branch is None and not run.replay_seqs:
            self.seq = seq = run.next_seq
            run.next_seq = seq + 1
        else:
            self.branch = branch
            self.seq = seq = run.take_seq(branch)
        self.place = frame.pending = AtOperation(seq, self)
        return self.settle()

    def __await__(self) -> Generator[Any, Any, Any]:
        self.caller = None
        if self.frame is not None:
            return self.settle().__await__()
        run = current_run()
        if run is None:
            return self.outside_durable_run().__await__()
        raise CheckpointException(_not_a_frame_message(self, run))

    def describe(self) -> str:
        return type(self).__name__

    # -- as a coroutine: what asyncio.create_task and task groups take -------------------------
    def send(self, value: Any) -> Any:
        steps = self.__dict__.get("_steps")
        if steps is None:
            self._as_task = True
            steps = self._steps = self.__await__()
        return steps.send(value)

    def throw(self, kind: Any, value: Any = None, traceback: Any = None) -> Any:
        steps = self.__dict__.get("_steps")
        if steps is None:  # not started: raised at once, as by a coroutine not started
            raise kind if value is None else value
        return steps.throw(kind if value is None else value)

    def close(self) -> None:
        self.caller = None  # closed unstarted on purpose, as a coroutine may be
        steps = self.__dict__.get("_steps")
        if steps is not None:
            steps.close()

    @abstractmethod
    async def settle(self) -> Any:
        """Settle the operation for `self.frame`, which is suspended at it."""

    @abstractmethod
    async def outside_durable_run(self) -> Any:
        """What awaiting the operation does when no durable run is active."""

    # -- journal ----------------------------------------------------------------------------
    def journaled(self) -> dict[str, Any] | None:
        """This operation's entry, or None; an entry of another operation at this sequence
        number (the code took another path) is cleared with every later entry."""
        run = self.frame.run
        entry = run.journal.get(self.seq)
        if entry is not None and not self.matches(entry):
            run.clear_journal_from(self.seq, self.branch)
            return None
        return entry

    def matches(self, entry: dict[str, Any]) -> bool:
        return True

    async def record(self, entry: dict[str, Any]) -> None:
        """Journal `entry` for this operation: one store write, durable when this returns."""
        run = self.frame.run
        run.record(self, entry)
        if run.unsettled_writes:
            await run.settle_writes()

    def settled_from(self, entry: dict[str, Any]) -> Any:
        """The outcome an entry holds: its value, or its exception raised."""
        self.place.operation = None
        return outcome_of(entry, self.frame.run)

    def suspended_here(self) -> bool:
        """Whether the frame still waits on this operation (a snapshot is valid now)."""
        pending = self.frame.pending
        if pending is self.place:
            return True
        return isinstance(pending, Gathering) and any(m is self.place for m in pending.members)


# A task of its own (`asyncio.create_task(durable_execute(...))`) then runs it: plainly outside
# a durable run, and inside one it raises the `CheckpointException` that says what to do.
Coroutine.register(Operation)


def outcome_of(entry: dict[str, Any], run: Any = None) -> Any:
    """The value of a settled entry (a scalar is kept as itself, anything else pickled, its
    large strings in the blobs of `run`'s state), or its exception raised."""
    if entry_status(entry) == FAILED:
        raise references.loads(entry["error"])
    if "value" in entry:
        return entry["value"]
    result = entry.get("result")
    if result is None:
        return None
    if entry.get("blob_keys"):
        return references.loads(result, None, run.out_of_line if run is not None else None)
    return references.loads(result)


def _not_a_frame_message(operation: Operation, run) -> str:
    """Why `operation` cannot run where it was awaited, naming the coroutine that awaited
    it when that is not a frame of the instance, and what to do instead."""
    if operation.__dict__.get("_as_task"):
        return (
            f"{operation.describe()} was started as a task of its own (asyncio.create_task, "
            f"asyncio.wait_for, or a task group's create_task) inside durable instance "
            f"{run.instance_id!r}, "
            "where it cannot be resumed: await it directly in the durable function, or run "
            "several at once with asyncio.gather(...) or durable.first(...)"
        )
    plain = _awaiting_coroutine()
    if plain is not None:
        code, line = plain
        where = f"{code.co_qualname}() at {code.co_filename}:{line}"
        failure = compile_failures.get(code)
        if failure is not None:
            return (
                f"{operation.describe()} was awaited inside durable instance "
                f"{run.instance_id!r} by {where}, which runs plainly because it cannot be "
                f"compiled as a helper:\n{failure}"
            )
        return (
            f"{operation.describe()} was awaited inside durable instance {run.instance_id!r} "
            f"by {where}, which is not a frame of the instance: its coroutine was not awaited "
            "directly by a durable function or helper (it was created earlier and started, "
            "awaited through asyncio.wait_for/create_task/a task group, awaited inside "
            "'async with'/'async for', or its module is not the user's code). Await the "
            "helper directly (`result = await helper(...)`), use asyncio.gather for "
            "concurrent durable calls, or durable.include_helpers(<its module>) for code "
            "outside your package"
        )
    return (
        f"{operation.describe()} was awaited inside durable instance {run.instance_id!r} at a "
        f"position that cannot be resumed ({_where(run)}): inside 'async for', a 'with' "
        "block without resumable(), a generator expression, or a task of its own "
        "(asyncio.wait_for, create_task, a task group). Await it directly in the durable "
        "function (as a statement or an assignment), or fan out with asyncio.gather or "
        "durable.first"
    )


def _awaiting_coroutine() -> tuple[Any, int] | None:
    """(code, line) of the nearest coroutine up the stack that is not compiled durable code."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        if code.co_flags & inspect.CO_COROUTINE:
            if FRAME in code.co_varnames:
                return None  # compiled code: the await position is the problem
            if not code.co_filename.startswith(_PACKAGE_DIRECTORY):
                return code, frame.f_lineno
        frame = frame.f_back
    return None


_PACKAGE_DIRECTORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where(run) -> str:
    frame = run.stack.innermost if run.stack.frames else None
    if frame is None or frame.python_frame is None:
        return "outside any durable frame"
    return f"in {frame.code.qualname}, near line {frame.python_frame.f_lineno}"


# -- nested durable calls -------------------------------------------------------------------
class ChildCall(Operation):
    """`await child(...)` of a durable function inside another durable run. Not journaled:
    the child's frame joins the instance's call stack and its own operations are."""

    def __init__(
        self, program: DurableProgram[..., Any], args: tuple[Any, ...], kwargs: dict[Any, Any]
    ) -> None:
        self.program: DurableProgram[..., Any] = program
        self.args: tuple[Any, ...] = args
        self.kwargs: dict[Any, Any] = kwargs

    def _durable_link(self, frame: FunctionCall, resume_point: int) -> Awaitable[Any]:
        self.frame: FunctionCall | None = frame
        return self.settle()

    def describe(self) -> str:
        return f"the durable function {self.program.code.qualname}()"

    async def outside_durable_run(self) -> Any:
        raise RuntimeError(
            f"{self.describe()} was created inside a durable run and awaited after it ended"
        )

    def callee(self, run: InstanceRun) -> FunctionCall:
        """The frame the call runs in (not on any stack yet)."""
        arguments = self.program.code.bind(*self.args, **self.kwargs)
        return FunctionCall(self.program, run, arguments=arguments)

    async def settle(self) -> Any:
        parent = self.frame
        child = self.callee(parent.run)
        parent.pending = AwaitingChild()
        parent.stack.push(child)
        return await run_callee(parent, child)


class HelperCall(ChildCall):
    """`await helper(...)` of an undecorated async function of the user's code inside a
    durable run: a nested frame like a durable function's, its arguments already bound
    (taken from the coroutine the call created)."""

    def __init__(self, helper: Any, arguments: tuple[Any, ...]) -> None:
        self.program = helper
        self.arguments: tuple[Any, ...] = arguments

    def describe(self) -> str:
        return f"the helper {self.program.code.qualname}()"

    def callee(self, run: InstanceRun) -> FunctionCall:
        return FunctionCall(self.program, run, arguments=self.arguments)


async def run_callee(parent: FunctionCall, child: FunctionCall) -> Any:
    """Run (or resume) `child` for `parent`."""
    try:
        result = await child.start()
    finally:
        parent.stack.pop(child)
    parent.pending = Settled(result)
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
        self.deadline: float | None = None
        #: An event taken from the inbox before the run resumed (see `DurableRuntime`).
        self.delivered: Event | None = None

    def describe(self) -> str:
        return f"wait_for_event({self.event!r})"

    def matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("kind") == "event" and entry.get("name") == self.event

    async def settle(self) -> Any:
        entry = self.journaled()
        if entry is not None:
            return self.settled_from(entry)
        run = self.frame.run
        if self.deadline is None and self.timeout is not None:
            self.deadline = time.time() + self.timeout
        delivered, self.delivered = self.delivered, None
        if delivered is None:
            try:
                delivered = await ask_for_event(run.backend, run.instance_id, self.event)
            except Exception as error:
                # The store's failure, not the workflow's: the run stops at its last write.
                run.stop_at_failed_write(error)
                raise
        if delivered is not None:
            self.place.operation = None
            await self.record(
                _event_entry(self.event, SUCCEEDED, result=_dump_value(delivered.payload))
            )
            return delivered.payload
        if self.deadline is not None and time.time() >= self.deadline:
            error = EventTimeoutError(self.event, self.timeout)
            self.place.operation = None
            await self.record(
                _event_entry(self.event, FAILED, error=_dump_error(error), error_summary=str(error))
            )
            raise error
        slot = current_slot()
        if slot is not None:
            await slot.park(self)  # a fan-out's member: the fan-out pauses the instance
        run.park([self], self.deadline)
        await run.settle_writes()
        await _Park()

    async def outside_durable_run(self) -> Any:
        raise RuntimeError(
            f"{self.describe()} must be awaited inside a durable function "
            "(one made with make_durable)"
        )


#: How long an ``async`` `wait_for_event` of a custom backend may take to answer before the
#: event is taken as not there (it may be written to wait until the event arrives).
EVENT_ANSWER_SECONDS = 0.05


async def ask_for_event(backend: Any, instance_id: str, event: str) -> Any:
    """The pending event `event` of the instance, taken from `backend`, or None. A backend
    whose `wait_for_event` is a coroutine function (as the original package declares it) is
    asked without blocking: an event that is there returns at once; one that does not come
    within `EVENT_ANSWER_SECONDS` is not there, and the instance pauses."""
    answer = backend.wait_for_event(instance_id, event)
    if not inspect.isawaitable(answer):
        return answer
    if getattr(backend, "answers_at_once", False):  # None at once when it is not there
        return await answer
    asking = asyncio.ensure_future(answer)
    done, _ = await asyncio.wait({asking}, timeout=EVENT_ANSWER_SECONDS)
    if not done:
        asking.cancel()
        return None
    answer = asking.result()
    # It waits until the event comes, so an answer is the event: an `Event`, or its payload.
    return answer if hasattr(answer, "payload") else Event(event, answer)


def _event_entry(name: str, status: str, **outcome: Any) -> dict[str, Any]:
    return {"kind": "event", "name": name, "status": status, **outcome}


@overload
def wait_for_event(event: str, timeout: float | None = None) -> Awaitable[Any]: ...


@overload
def wait_for_event(event: str, timeout: float | None = None, *, type: type[T]) -> Awaitable[T]: ...


def wait_for_event(
    event: str, timeout: float | None = None, *, type: type[Any] | None = None
) -> Awaitable[Any]:
    """Wait durably for `event` sent to this instance; returns the event's payload.

    Awaited directly in a durable function. If the event is already in the inbox it is
    consumed at once; otherwise the instance is saved as waiting and the caller receives
    `PauseForEventException(event)`; calling the instance again after `publish_event`
    resumes here. With `timeout` (seconds), a call made after the deadline without the event
    raises `EventTimeoutError` at this point. Consuming the event (or timing out) is
    journaled, so a restart neither loses nor repeats it.

    `type` tells a type checker what the payload is (``await wait_for_event("approve",
    type=Approval)`` is an ``Approval``); it is not checked at run time, where the payload
    is whatever was published. Without it the payload is ``Any``.
    """
    return WaitForEvent(event, timeout)


# -- cancellation ---------------------------------------------------------------------------
#: The inbox event that asks an instance to cancel (its payload: the reason); reserved.
CANCEL_EVENT = "durable.cancel"


class CancelPoint(Operation):
    """`Cancelled`, delivered at a checkpoint in place of the operation that was to start
    there: journaled (consuming the cancel event in the same write), so a resume inside
    the cleanup raises nothing again and a crash before it delivers it again."""

    def __init__(self, reason: str | None) -> None:
        self.reason = reason

    def describe(self) -> str:
        return "cancellation"

    def matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("kind") == "cancel"

    async def settle(self) -> Any:
        entry = self.journaled()
        if entry is not None:
            return self.settled_from(entry)
        run = self.frame.run
        take = getattr(run.backend, "cancel_requested", None)
        if take is not None:
            take(run.instance_id, take=True)  # consumed with the write below
        error = Cancelled(self.reason)
        logger.info(
            "instance %r cancelled%s: Cancelled raised in %s",
            run.instance_id, f" ({self.reason})" if self.reason else "", self.frame.code.qualname,
        )  # fmt: skip
        self.place.operation = None
        await self.record(
            {
                "kind": "cancel",
                "status": FAILED,
                "error": _dump_error(error),
                "error_summary": str(error),
            }
        )
        raise error

    async def outside_durable_run(self) -> Any:
        raise Cancelled(self.reason)


def close_awaitable(awaitable: Any) -> None:
    """Drop an awaitable that will not be awaited, quietly (an operation not started on
    purpose, a coroutine never run, a future no one waits for)."""
    if isinstance(awaitable, Operation):
        awaitable.caller = None
    if inspect.iscoroutine(awaitable):
        awaitable.close()
    elif isinstance(awaitable, asyncio.Future):
        awaitable.cancel()


# -- timers ---------------------------------------------------------------------------------
class Sleep(Operation):
    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"sleep() needs seconds >= 0, got {seconds!r}")
        self.seconds = seconds

    def describe(self) -> str:
        return f"sleep({self.seconds!r})"

    def matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("kind") == "timer"

    async def settle(self) -> None:
        entry = self.journaled()
        if entry is None:
            deadline = time.time() + self.seconds
            self.place.operation = None
            await self.record({"kind": "timer", "status": SUCCEEDED, "deadline": deadline})
        else:
            self.place.operation = None
            deadline = entry["deadline"]
        await sleep_until(deadline)

    async def outside_durable_run(self) -> None:
        await asyncio.sleep(self.seconds)


async def sleep_until(deadline: float) -> None:
    """Sleep until `deadline`; a fan-out's member sleeping so lets the fan-out pause the
    instance meanwhile, with a wake-up time, when every other member waits for an event."""
    remaining = deadline - time.time()
    if remaining <= 0:
        return
    slot = current_slot()
    if slot is None:
        run = current_run()
        park_after = None if run is None else run.park_sleeps_after
        if park_after is not None and remaining > park_after:
            run.park_sleeping(deadline)
            await run.settle_writes()
            await _Park()
        await asyncio.sleep(remaining)
        return
    slot.settle_quietly([], deadline)
    try:
        await asyncio.sleep(remaining)
    finally:
        slot.go_on()


def sleep(seconds: float) -> Awaitable[None]:
    """A durable timer: the wake-up time is journaled, so a restart honours the remaining
    time instead of starting the wait again."""
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
    """`durable_execute(func, ...)`: run a side effect once per instance and journal it."""

    def __init__(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[Any, Any],
        reconciler: Callable[[], Any] | None,
        in_thread: bool,
        retry: RetryPolicy | None = None,
    ) -> None:
        if reconciler is not None:
            validate_reconciler(reconciler)
        if not callable(func):
            raise TypeError(f"durable_execute needs a callable, got {func!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise TypeError(f"retry must be a durable.RetryPolicy, got {retry!r}")
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.reconciler = reconciler
        self.in_thread = in_thread
        self.retry = retry
        # Kept, not read: reading its line costs more than the rest of a step.
        self.caller = sys._getframe(2)  # the code calling durable_execute or the step

    def __del__(self) -> None:
        # As Python warns of a coroutine never awaited: `charge(order)` without `await` runs
        # and journals nothing. The line is where the caller was when the call was dropped:
        # the call's own line for a bare `charge(order)`.
        caller = self.caller
        if caller is not None:
            self.caller = None
            code = caller.f_code
            warnings.warn_explicit(
                f"{self.describe()} was never awaited (in {code.co_qualname}), so it did not "
                "run and nothing was journaled; write 'await ...'",
                RuntimeWarning,
                code.co_filename,
                caller.f_lineno or code.co_firstlineno,
            )

    def describe(self) -> str:
        return f"durable_execute({function_id(self.func)})"

    def identity(self) -> tuple[str, str]:
        """(function_id, args_digest) of this call, computed once."""
        identity = self.__dict__.get("_identity")
        if identity is None:
            identity = (function_id(self.func), args_digest(self.args, self.kwargs))
            self._identity = identity
        return identity

    def matches(self, entry: dict[str, Any]) -> bool:
        function, digest = self.identity()
        return (
            entry.get("kind", "call") == "call"
            and entry.get("function_id") == function
            and digests_match(entry.get("args_digest"), digest, self.args, self.kwargs)
        )

    async def call(self) -> Any:
        if self.in_thread and not inspect.iscoroutinefunction(self.func):
            result = await asyncio.to_thread(self.func, *self.args, **self.kwargs)
        else:
            result = self.func(*self.args, **self.kwargs)
        if _awaitable(result):
            result = await result
        return result

    async def outside_durable_run(self) -> Any:
        return await self.call()

    async def settle(self) -> Any:
        frame = self.frame
        if (
            self.reconciler is None
            and self.retry is None
            and not self.in_thread
            and frame.pending is self.place
            and self.seq not in frame.run.journal
        ):
            # The common step, inline: a new call, no reconciler, no retries.
            self.started_at: float = _time()
            try:
                value = self.func(*self.args, **self.kwargs)
                if type(value) not in _NEVER_AWAITABLE and inspect.isawaitable(value):
                    value = await value  # (`_awaitable`, without a call for a plain value)
            except Exception as error:
                await self.finish(FAILED, 1, error=error)
                raise
            run = frame.run
            run.record(self, self.outcome_entry(SUCCEEDED, 1, value=value))
            if run.unsettled_writes:  # `Operation.record`, without a coroutine per step
                await run.settle_writes()
            return value
        self.started_at = _time()
        entry = self.journaled()
        if entry is None:
            return await self.attempt(0, None)
        if entry_status(entry) != PENDING:
            return self.settled_from(entry)
        attempts = entry.get("attempts", 1)
        if not entry.get("in_flight", True):
            return await self.attempt(attempts, entry.get("retry_at"))
        if self.reconciler is None:
            return await self.attempt(attempts - 1, None)
        instance_id = frame.run.instance_id
        try:
            value = self.reconciler()
            if inspect.isawaitable(value):
                value = await value
        except NotApplied:
            logger.info(
                "instance %r: the reconciler of %s says it did not happen; it runs again",
                instance_id, self.describe(),
            )  # fmt: skip
            return await self.attempt(attempts - 1, None)
        except Exception as error:
            logger.info(
                "instance %r: the reconciler of %s says it failed: %s",
                instance_id, self.describe(), error_summary(error),
            )  # fmt: skip
            await self.finish(FAILED, attempts, error=error)
            raise
        logger.info(
            "instance %r: the reconciler of %s settled it with a %s",
            instance_id, self.describe(), type(value).__name__,
        )  # fmt: skip
        await self.finish(SUCCEEDED, attempts, value=value)
        return value

    async def attempt(self, attempts: int, retry_at: float | None) -> Any:
        """Run attempts after the `attempts` already made, until one settles the call."""
        while True:
            if retry_at is not None:
                await asyncio.sleep(max(0.0, retry_at - time.time()))
            attempts += 1
            if self.reconciler is not None:
                await self.record(self.entry(PENDING, attempts, in_flight=True))
            try:
                value = await self.call()
            except Exception as error:
                if self.retry is not None and self.retry.retries(error, attempts):
                    delay = self.retry.backoff(attempts)
                    retry_at = time.time() + delay
                    logger.info(
                        "instance %r: %s failed on attempt %d (%s); attempt %d in %.3g s",
                        self.frame.run.instance_id, self.describe(), attempts,
                        error_summary(error), attempts + 1, delay,
                    )  # fmt: skip
                    await self.record(
                        self.entry(PENDING, attempts, in_flight=False, retry_at=retry_at)
                    )
                    continue
                await self.finish(FAILED, attempts, error=error)
                raise
            await self.finish(SUCCEEDED, attempts, value=value)
            return value

    def entry(self, status: str, attempts: int, **fields: Any) -> dict[str, Any]:
        """The journal entry of this call (``kind`` "call" and one attempt are the defaults
        readers assume, so they are left out)."""
        function, digest = self.identity()
        entry = {"function_id": function, "args_digest": digest, "status": status, **fields}
        started_at = self.__dict__.get("started_at")
        if started_at is not None:
            entry["started_at"] = started_at
        if attempts != 1:
            entry["attempts"] = attempts
        return entry

    def outcome_entry(
        self, status: str, attempts: int, *, value: Any = None, error: Any = None
    ) -> dict[str, Any]:
        """The entry that settles this call; the call no longer needs saving with the frame.
        A scalar value is kept as itself, anything else pickled. A failed call stays with
        the frame, so that retrying the instance can run it again."""
        if status != SUCCEEDED:
            self.failed = True
            return self.entry(
                status, attempts, error=_dump_error(error), error_summary=error_summary(error)
            )
        self.place.operation = None
        run = self.frame.run
        if run.out_of_line is not None and (type(value) not in _SCALARS or goes_out_of_line(value)):
            # A large state: the value's large strings go to blobs the snapshot shares.
            result, keys = self._pickled(run.dump_value, value)
            entry = self.entry(status, attempts, result=result)
            if keys:
                entry["blob_keys"] = keys
            return entry
        if type(value) in _SCALARS and attempts == 1:
            # The common outcome, built directly: the same dict `entry` makes, without its
            # keyword arguments and cached identity (about 6,000 instructions a step).
            return {
                "function_id": function_id(self.func),
                "args_digest": args_digest(self.args, self.kwargs),
                "status": status,
                "value": value,
                "started_at": self.started_at,
            }
        if type(value) in _SCALARS:
            return self.entry(status, attempts, value=value)
        return self.entry(status, attempts, result=self.dump_result(value))

    async def finish(
        self, status: str, attempts: int, *, value: Any = None, error: Any = None
    ) -> None:
        await self.record(self.outcome_entry(status, attempts, value=value, error=error))

    def dump_result(self, value: Any) -> bytes | None:
        return self._pickled(_dump_value, value)

    def _pickled(self, dump: Callable[[Any], Any], value: Any) -> Any:
        """`dump(value)`, or the `CheckpointException` saying the value cannot be pickled."""
        try:
            return dump(value)
        except Exception as error:
            raise CheckpointException(
                f"{self.describe()} in instance {self.frame.run.instance_id!r} returned "
                f"{type(value).__name__}, which cannot be pickled ({error}); return a "
                "picklable value (its outcome is journaled)"
            ) from error


_NEVER_AWAITABLE = frozenset({int, float, str, bytes, bool, type(None), list, dict, tuple, set})


def _awaitable(value: Any) -> bool:
    return type(value) not in _NEVER_AWAITABLE and inspect.isawaitable(value)


def _dump_value(value: Any) -> bytes | None:
    if value is None:
        return None
    return references.dumps(value)


_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})


def error_summary(error: BaseException) -> str:
    """One line naming `error`, for the history (which never holds a pickled exception)."""
    text = (
        f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__
    )
    return text if len(text) <= 200 else text[:199] + "…"


_time = time.time


def _dump_error(error: BaseException) -> bytes:
    return references.pickle_error(error)


@overload
def durable_execute(  # type: ignore[overload-overlap]  # an awaitable result is awaited
    func: Callable[..., Awaitable[R]],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[R]: ...


@overload
def durable_execute(
    func: Callable[..., R],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[R]: ...


def durable_execute(
    func: Callable[..., Any],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[Any]:
    """Run `func(*args, **kwargs)` (sync or async) once per instance and journal its outcome.

    Awaited directly in a durable function (or in `asyncio.gather` there), the call takes the
    instance's next journal sequence number; its result or exception is journaled, and a
    resumed instance gets it back without calling `func` again. `reconciler` (no arguments)
    settles a call that was in flight when the process died: it returns the call's result,
    raises its failure, or raises `NotApplied` to have the call run again. `retry` retries
    failures by a `RetryPolicy`. Outside a durable run it is a plain call (the reconciler is
    validated and ignored). `reconciler` and `retry` are never passed to `func`.
    """
    return Execute(func, args, kwargs, reconciler, False, retry)  # positional: a fast call


@overload
def durable_execute_async(  # type: ignore[overload-overlap]  # as durable_execute
    func: Callable[..., Awaitable[R]],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[R]: ...


@overload
def durable_execute_async(
    func: Callable[..., R],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[R]: ...


def durable_execute_async(
    func: Callable[..., Any],
    *args: Any,
    reconciler: Callable[[], Any] | None = None,
    retry: RetryPolicy | None = None,
    **kwargs: Any,
) -> Awaitable[Any]:
    """As `durable_execute`, but a sync `func` runs in a worker thread. Nothing runs and
    nothing is journaled until the returned awaitable is awaited."""
    return Execute(func, args, kwargs, reconciler, in_thread=True, retry=retry)


class StepDecorator(Protocol):
    """What ``step(reconciler=..., retry=..., in_thread=...)`` returns: it makes a step."""

    @overload
    def __call__(  # type: ignore[overload-overlap]  # an awaitable result is awaited
        self, func: Callable[P, Awaitable[R]], /
    ) -> Callable[P, Awaitable[R]]: ...

    @overload
    def __call__(self, func: Callable[P, R], /) -> Callable[P, Awaitable[R]]: ...


@overload
def step(  # type: ignore[overload-overlap]  # an awaitable result is awaited
    func: Callable[P, Awaitable[R]],
    /,
    *,
    reconciler: Callable[..., Any] | None = None,
    retry: RetryPolicy | None = None,
    in_thread: bool = False,
) -> Callable[P, Awaitable[R]]: ...


@overload
def step(
    func: Callable[P, R],
    /,
    *,
    reconciler: Callable[..., Any] | None = None,
    retry: RetryPolicy | None = None,
    in_thread: bool = False,
) -> Callable[P, Awaitable[R]]: ...


@overload
def step(
    func: None = None,
    /,
    *,
    reconciler: Callable[..., Any] | None = None,
    retry: RetryPolicy | None = None,
    in_thread: bool = False,
) -> StepDecorator: ...


def step(
    func: Callable[..., Any] | None = None,
    /,
    *,
    reconciler: Callable[..., Any] | None = None,
    retry: RetryPolicy | None = None,
    in_thread: bool = False,
) -> Any:
    """Make every call of `func` a journaled durable operation (``@durable.step``).

    ``await charge(order)`` inside a durable function then behaves as
    ``await durable_execute(charge, order)``; outside a durable run it is a plain call.
    A step's `reconciler` takes the same arguments as the step. `in_thread` runs a sync
    function in a worker thread, as `durable_execute_async` does.
    """
    if func is None:
        return functools.partial(step, reconciler=reconciler, retry=retry, in_thread=in_thread)
    if not callable(func):
        raise TypeError(f"step expects a function, got {func!r}")
    if reconciler is not None and not callable(reconciler):
        raise TypeError("reconciler must be callable")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry must be a durable.RetryPolicy, got {retry!r}")

    @functools.wraps(func)
    def durable_step(*args: Any, **kwargs: Any) -> Awaitable[Any]:
        bound = None if reconciler is None else functools.partial(reconciler, *args, **kwargs)
        return Execute(func, args, kwargs, bound, in_thread=in_thread, retry=retry)

    durable_step.__durable_step__ = func
    durable_step.__durable_operation__ = True
    return durable_step


for _operation in (wait_for_event, sleep, durable_execute, durable_execute_async):
    # Awaiting one of these where a checkpoint cannot resume is a compile error (DUR104).
    _operation.__durable_operation__ = True


# -- resuming ----------------------------------------------------------------------------
async def _resume_operation(frame: FunctionCall, place: AtOperation) -> Any:
    run = frame.run
    if run.cancel_pending and _cancellable_here(run, place):
        return await run.deliver_cancel(frame)
    operation = place.operation
    if operation is not None:
        operation.frame = frame
        operation.place = place
        operation.seq = place.seq
        operation.branch = frame.stack.branch
        return await operation.settle()
    entry = frame.run.journal.get(place.seq)
    if entry is None or entry_status(entry) == PENDING:
        raise CheckpointException(
            f"instance {frame.run.instance_id!r}: {frame.code.qualname} was saved in durable "
            f"operation {place.seq}, whose journal entry is missing; the stored state is "
            "inconsistent"
        )
    if entry.get("kind") == "timer":
        # Resumed in a durable sleep: only the time left until its journaled deadline.
        await sleep_until(entry["deadline"])
        return None
    return outcome_of(entry, frame.run)


def _cancellable_here(run: Any, place: AtOperation) -> bool:
    """Whether a frame resumed at `place` takes a pending cancellation now: it waits for an
    event or sleeps there (settled calls and calls in flight settle first)."""
    if isinstance(place.operation, WaitForEvent):
        return True
    entry = run.journal.get(place.seq)
    return entry is not None and entry.get("kind") == "timer"
