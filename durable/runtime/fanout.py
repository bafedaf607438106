"""Fan-out (`asyncio.gather` over durable awaitables, `durable.first`), and what a frame
awaits: the top of the operation layer, which `FunctionCall` reaches for at its checkpoints.

Each member of a fan-out is a branch that runs, pauses and resumes on its own (an operation,
or the frames of a nested durable function or helper); the instance pauses when no branch
can go on, and a resume settles every branch by the journal and its own saved frames.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
from collections.abc import Awaitable
from types import CoroutineType
from typing import Any

from .._errors import CheckpointException
from .context import _current_slot, current_slot
from .frames import (
    AtOperation,
    AwaitingChild,
    Branch,
    BranchDone,
    CallStack,
    FunctionCall,
    Gathering,
    Settled,
    branch_name,
)
from .helpers import helper_of
from .journal import FAILED, SUCCEEDED
from .operations import (
    _SCALARS,
    ChildCall,
    HelperCall,
    Operation,
    WaitForEvent,
    _dump_error,
    _dump_value,
    _Park,
    _resume_operation,
    outcome_of,
    run_callee,
)


# -- what a frame awaits (called by `FunctionCall`) ---------------------------------------------
def helper_call(awaiting_module: str, coroutine: CoroutineType[Any, Any, Any]) -> HelperCall | None:
    """The nested-frame call of `coroutine` when it is an unstarted helper coroutine."""
    found = helper_of(awaiting_module, coroutine)
    return None if found is None else HelperCall(*found)


def wait_point(event: str) -> WaitForEvent:
    """`raise PauseForEventException(event)` in the user's source."""
    return WaitForEvent(event, timeout=None)


async def resume_pending(frame: FunctionCall, resume_point: int) -> Any:
    """Settle the operation `frame` was suspended in when its snapshot was taken."""
    pending = frame.pending
    if isinstance(pending, AtOperation):
        return await _resume_operation(frame, pending)
    if isinstance(pending, Settled):
        frame.pending = None
        return pending.value
    if isinstance(pending, AwaitingChild):
        return await run_callee(frame, frame.stack.callee_of(frame))
    if isinstance(pending, Gathering):
        return await resume_fan_out(frame, pending)
    raise CheckpointException(
        f"instance {frame.run.instance_id!r}: {frame.code.qualname} was saved at the "
        f"checkpoint at line {frame.code.line_of(resume_point)} with no operation "
        "in progress; the stored state is inconsistent"
    )


# -- what a branch's code sees ----------------------------------------------------------------
class Slot:
    """One running member of a fan-out, as the code of its branch sees it: whether it can go
    on, or waits for events (until `deadline`) or for a timer only."""

    __slots__ = ("changed", "waits", "deadline", "quiet")

    def __init__(self, changed: asyncio.Event) -> None:
        #: Set when this member (or any member of its fan-out) changes what it waits for.
        self.changed: asyncio.Event = changed
        self.waits: list[Any] = []
        self.deadline: float | None = None
        self.quiet: bool = False

    def settle_quietly(self, waits: list[Any], deadline: float | None) -> None:
        self.waits, self.deadline, self.quiet = waits, deadline, True
        self.changed.set()

    def go_on(self) -> None:
        self.waits, self.deadline, self.quiet = [], None, False

    def stop(self) -> Awaitable[None]:
        """The run stops on request here (see `InstanceRun.stop_here`)."""
        return self._rest([], None)

    def park(self, wait: Any) -> Awaitable[None]:
        """The branch waits for `wait`'s event: it stops here for the rest of this run."""
        return self._rest([wait], wait.deadline)

    async def _rest(self, waits: list[Any], deadline: float | None) -> None:
        self.settle_quietly(waits, deadline)
        await asyncio.get_running_loop().create_future()  # cancelled when the run stops


# -- the awaitable --------------------------------------------------------------------------
class FanOut(Operation):
    """`asyncio.gather` of durable awaitables (taken over from asyncio before its tasks
    start), or `durable.first`. Awaited by a frame it becomes the frame's `Gathering`."""

    def __init__(self, awaitables: list[Any], *, first: bool, return_exceptions: bool) -> None:
        self.awaitables = awaitables
        self.first = first
        self.return_exceptions = return_exceptions

    def describe(self) -> str:
        return "durable.first(...)" if self.first else "asyncio.gather(...)"

    def matches(self, entry: dict[str, Any]) -> bool:
        return entry.get("kind") == "fan-out" and entry.get("members") == len(self.awaitables)

    def _durable_link(self, frame: FunctionCall, resume_point: int) -> Awaitable[Any]:
        self.frame: FunctionCall | None = frame
        run = frame.run
        branch = frame.stack.branch
        members: list[Any] = []
        awaitables = [_durable_form(frame, awaitable) for awaitable in self.awaitables]
        if self.first or any(not _is_leaf(awaitable) for awaitable in awaitables):
            # Members with frames of their own are named after the fan-out's entry.
            self.seq: int = run.take_seq(branch)
        self.branch = branch
        for index, awaitable in enumerate(awaitables):
            if isinstance(awaitable, ChildCall):
                stack = CallStack(branch=branch_name(self.seq, index))
                stack.push(awaitable.callee(run))
                members.append(Branch(stack))
            elif isinstance(awaitable, Operation):
                awaitable.frame = frame
                awaitable.caller = None
                awaitable.branch = branch
                awaitable.seq = run.take_seq(branch)
                awaitable.place = AtOperation(awaitable.seq, awaitable)
                members.append(awaitable.place)
            else:
                members.append(Branch(task=asyncio.ensure_future(awaitable)))
        gathering = Gathering(members, self.return_exceptions, self.first, self.seq)
        self.place: AtOperation | Gathering | None = gathering
        frame.pending = gathering
        return self.settle()

    async def settle(self) -> Any:
        if self.seq:
            entry = self.journaled()
            if entry is None:
                run = self.frame.run
                run.fan_outs += 1  # the entry's snapshot must not catch a plain member running
                try:
                    members = len(self.awaitables)
                    await self.record({"kind": "fan-out", "status": SUCCEEDED, "members": members})
                finally:
                    run.fan_outs -= 1
            elif "winner" in entry:
                return _winner_from(entry)
        return await run_members(self.frame, self.place)

    async def outside_durable_run(self) -> Any:
        tasks = [asyncio.ensure_future(awaitable) for awaitable in self.awaitables]
        if not self.first:
            return await asyncio.gather(*tasks, return_exceptions=self.return_exceptions)
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        winner = min(tasks.index(task) for task in done)
        return winner, tasks[winner].result()


def first(*awaitables: Any) -> Awaitable[tuple[int, Any]]:
    """Wait for the first of several durable awaitables; returns ``(index, value)``.

    ``index, value = await durable.first(wait_for_event("approve"), wait_for_event("reject"),
    durable.sleep(86400))``. Each awaitable (a durable call, step, wait point, timer, nested
    durable function or helper call) runs as a branch of its own, as in `asyncio.gather`.
    The first to finish wins: its outcome is journaled, so a resume sees the same winner,
    and the other branches are cancelled. A winner that raised raises here. While every
    branch waits for an event or a timer, the instance pauses, waiting for any of them.
    """
    if not awaitables:
        raise TypeError("durable.first() needs at least one awaitable")
    return FanOut(list(awaitables), first=True, return_exceptions=False)


first.__durable_operation__ = True


def fan_out_of_gather(module: str, gathering: asyncio.Future[Any]) -> FanOut | None:
    """The fan-out that replaces `asyncio.gather`'s future when a frame awaits it and any
    member is durable (an operation, or an unstarted helper coroutine); None otherwise.
    asyncio's own tasks for those members have not started yet: they are cancelled, and the
    members run as branches instead. Members that are not durable keep their tasks."""
    awaitables: list[Any] = []
    durable = False
    for child in getattr(gathering, "_children", ()):
        member = _durable_member(module, child)
        if member is None:
            awaitables.append(child)
        else:
            child.cancel()
            awaitables.append(member)
            durable = True
    if not durable:
        return None
    gathering.add_done_callback(_forget)
    return FanOut(awaitables, first=False, return_exceptions=_returns_exceptions(gathering))


def _durable_member(module: str, child: Any) -> Any:
    """The durable awaitable asyncio's task `child` would run, when it has not started."""
    get_coro = getattr(child, "get_coro", None)
    coroutine = get_coro() if get_coro is not None else None
    if isinstance(coroutine, Operation):  # asyncio takes an operation for a coroutine
        return coroutine if "_steps" not in coroutine.__dict__ else None
    if type(coroutine) is CoroutineType:
        if coroutine.cr_code.co_name != "_wrap_awaitable":
            return helper_call(module, coroutine)  # None unless an unstarted helper
        if inspect.getcoroutinestate(coroutine) != inspect.CORO_CREATED:
            return None
        wrapped = coroutine.cr_frame.f_locals.get("awaitable")
    elif inspect.isgenerator(coroutine):  # asyncio's wrapper of an awaitable before 3.12
        if inspect.getgeneratorstate(coroutine) != inspect.GEN_CREATED:
            return None
        wrapped = coroutine.gi_frame.f_locals.get("awaitable")
    else:
        return None
    return wrapped if isinstance(wrapped, Operation) else None


def _forget(gathering: asyncio.Future[Any]) -> None:
    """Retrieve the outcome of a replaced gather's future, which nothing awaits."""
    if not gathering.cancelled():
        gathering.exception()


def _returns_exceptions(gathering: Any) -> bool:
    """Whether `asyncio.gather` made `gathering` with ``return_exceptions=True``. asyncio
    keeps the flag only in the callback it adds to each member, so it is read from there."""
    for child in getattr(gathering, "_children", ()):
        for callback, _context in getattr(child, "_callbacks", None) or ():
            code = getattr(callback, "__code__", None)
            if code is not None and "return_exceptions" in code.co_freevars:
                cell = callback.__closure__[code.co_freevars.index("return_exceptions")]
                return bool(cell.cell_contents)
    return False


def _durable_form(frame: FunctionCall, awaitable: Any) -> Any:
    """`awaitable` as a member: an unstarted helper coroutine becomes its nested call."""
    if type(awaitable) is CoroutineType:
        call = helper_call(frame.code.module, awaitable)
        if call is not None:
            return call
    return awaitable


def _is_leaf(awaitable: Any) -> bool:
    """Whether the member is one journaled operation (its sequence number names it)."""
    if isinstance(awaitable, FanOut):
        raise CheckpointException(
            f"{awaitable.describe()} cannot be a member of another fan-out directly; await "
            "it inside a helper (`async def both(): return await ...`) and fan out to that"
        )
    return isinstance(awaitable, Operation) and not isinstance(awaitable, ChildCall)


def _winner_from(entry: dict[str, Any]) -> tuple[int, Any]:
    return entry["winner"], outcome_of(entry)


# -- running the members ----------------------------------------------------------------------
async def resume_fan_out(frame: FunctionCall, gathering: Gathering) -> Any:
    """Settle the fan-out `frame` was saved in."""
    if gathering.first:
        entry = frame.run.journal.get(gathering.seq)
        if entry is not None and "winner" in entry:
            return _winner_from(entry)
    return await run_members(frame, gathering)


async def run_members(frame: FunctionCall, gathering: Gathering) -> Any:
    """Run every unfinished member of `gathering` as a task of its own until the fan-out
    has its outcome: all members (gather), or the first (first); or until no member can go
    on, when the instance (or the fan-out this one is a branch of) pauses."""
    run = frame.run
    members = gathering.members
    changed = asyncio.Event()
    tasks: dict[int, asyncio.Task[Any]] = {}
    slots: dict[int, Slot] = {}
    for index, member in enumerate(members):
        if type(member) is BranchDone:
            continue
        slot = slots[index] = Slot(changed)
        context = contextvars.copy_context()
        context.run(_current_slot.set, slot)
        task = asyncio.get_running_loop().create_task(
            _run_member(frame, gathering, index), context=context
        )
        task.add_done_callback(lambda _task: changed.set())
        tasks[index] = task
    run.gathered_tasks.extend(tasks.values())
    run.fan_outs += 1
    results: dict[int, Any] = {}
    outer = current_slot()
    try:
        while True:
            await changed.wait()
            changed.clear()
            for index, task in list(tasks.items()):
                if not task.done():
                    continue
                del tasks[index]
                error = None if task.cancelled() else task.exception()
                if task.cancelled():
                    if run.closing:
                        continue  # stopped after another member's write failed: that error
                    error = asyncio.CancelledError()
                if error is not None and (
                    run.closing  # a write failed: the run stops as if the process died
                    or not isinstance(error, Exception)
                    or not (gathering.return_exceptions or gathering.first)
                ):
                    await _cancel(tasks, run)
                    raise error
                if gathering.first:
                    return await _finish_first(frame, gathering, index, task, error, tasks)
                results[index] = error if error is not None else task.result()
            if not tasks:
                if run.closing:
                    raise run.failed_write or asyncio.CancelledError()
                return [
                    results[index] if index in results else members[index].value
                    for index in range(len(members))
                ]
            if outer is not None:
                outer.go_on()
            if all(slots[index].quiet for index in tasks):
                waits = [wait for index in tasks for wait in slots[index].waits]
                deadlines = [
                    slots[index].deadline for index in tasks if slots[index].deadline is not None
                ]
                deadline = min(deadlines) if deadlines else None
                if outer is not None and (waits or run.stopped):
                    outer.settle_quietly(waits, deadline)
                elif run.stopped:
                    await _Park()  # stopped on request: the instance stays at its last write
                elif waits:
                    run.park(waits, deadline)
                    await run.settle_writes()
                    await _Park()
    finally:
        run.fan_outs -= 1
        if tasks:
            for task in tasks.values():
                task.cancel()


async def _run_member(frame: FunctionCall, gathering: Gathering, index: int) -> Any:
    """Run member `index`; a branch is marked done as it finishes, before any other member
    can take a snapshot."""
    member = gathering.members[index]
    if type(member) is AtOperation:
        return await _resume_operation(frame, member)
    stack = member.stack
    try:
        if member.task is not None:
            value = await member.task
        else:
            value = await stack.frames[0].start()
    except Exception as error:
        if not frame.run.closing:
            gathering.members[index] = BranchDone(error, failed=True)
        raise
    finally:
        member.task = None
        if stack is not None:
            stack.pop(stack.frames[0])
    gathering.members[index] = BranchDone(value)
    return value


async def _finish_first(
    frame: FunctionCall,
    gathering: Gathering,
    winner: int,
    task: asyncio.Task[Any],
    error: BaseException | None,
    others: dict[int, asyncio.Task[Any]],
) -> tuple[int, Any]:
    """Journal `winner` as the fan-out's outcome, cancel the other members, and return it."""
    run = frame.run
    await _cancel(others, run)
    entry: dict[str, Any] = {
        "kind": "fan-out",
        "members": len(gathering.members),
        "winner": winner,
    }
    if error is not None:
        entry.update(status=FAILED, error=_dump_error(error))
    else:
        value = task.result()
        entry["status"] = SUCCEEDED
        if type(value) in _SCALARS:
            entry["value"] = value
        else:
            entry["result"] = _dump_value(value)
    run.journal[gathering.seq] = entry
    run.record_entry(gathering.seq, entry)
    await run.settle_writes()
    if error is not None:
        raise error
    return winner, task.result()


async def _cancel(tasks: dict[int, asyncio.Task[Any]], run: Any) -> None:
    """Cancel members still running and let them unwind (their handlers run: the fan-out
    really leaves them)."""
    for task in tasks.values():
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    tasks.clear()


__all__ = ["FanOut", "fan_out_of_gather", "first", "resume_fan_out"]
