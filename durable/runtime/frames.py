"""Frames and call stacks: what a running durable function is, and how it is snapshotted.

A `FunctionCall` is one frame: its compiled function, its resume point, its live locals and
the durable operation it is suspended in. Compiled code calls the frame's methods (`enter`,
`at`, `resume`, `pause`, ...) — the only runtime surface the compiler emits calls to.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import pickle
import sys
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass
from types import CellType, CoroutineType, FrameType
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._errors import CheckpointException, IncompatibleStateError
from . import contexts, references
from .helpers import program_for_saved
from .out_of_line import OutOfLine

if TYPE_CHECKING:
    from ..transform.pipeline import CodeBlock
    from .program import DurableProgram
    from .runtime import InstanceRun

#: Version of the pickled call-stack layout; bumped on any change to the records below.
STACK_FORMAT = 5
#: Earlier layouts still read: 3 had no cells, 4 gathered operations only.
_READABLE_FORMATS = frozenset({3, 4, 5})


# -- what a frame is suspended in -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AwaitingChild:
    """Suspended in a nested durable call; the callee is the next frame of the stack."""


@dataclass(frozen=True, slots=True)
class Settled:
    """A nested call returned `value` (kept in memory only until the frame moves on)."""

    value: Any


@dataclass(slots=True)
class AtOperation:
    """Suspended in durable operation number `seq` of the instance. The operation itself is
    kept while its journal entry does not settle it yet (to reconcile, retry or wait on)."""

    seq: int
    operation: Any = None


@dataclass(slots=True)
class Branch:
    """A member of a fan-out that runs frames of its own (a nested durable function or a
    helper): their stack, `records` until a resume rebuilds it, and a plain awaitable's
    task when the member is not durable code (it cannot be resumed while it runs)."""

    stack: CallStack | None = None
    records: tuple[Any, ...] | None = None
    task: Any = None


@dataclass(slots=True)
class BranchDone:
    """A member of a fan-out that finished: its value, or its exception (`failed`)."""

    value: Any
    failed: bool = False


Member = AtOperation | Branch | BranchDone


@dataclass(slots=True)
class Gathering:
    """Suspended in a fan-out (`asyncio.gather`, or `durable.first` when `first`), one
    member per awaitable in argument order. `seq` is the fan-out's own journal entry (0 for
    a gather of operations only, which needs none): it names the members' branches."""

    members: list[Member]
    return_exceptions: bool = False
    first: bool = False
    seq: int = 0


Pending = AwaitingChild | Settled | AtOperation | Gathering


@dataclass(frozen=True, slots=True)
class FrameRecord:
    """One frame as stored: enough to re-enter its function at `resume_point`."""

    program: str
    fingerprint: str
    resume_point: int
    line: int
    live_locals: dict[str, Any]
    arguments: tuple[Any, ...] | None
    pending: Pending | None
    #: The frame's own cells (variables its closures share), in `CodeBlock.cell_names` order.
    cells: tuple[Any, ...] | None = None

    @classmethod
    def from_plain(cls, plain: tuple[Any, ...]) -> FrameRecord:
        """The record a snapshot holds as plain tuples (`FunctionCall.plain_record`): tuples
        and builtins only, so the pickler names no class or function (a range iterator, which
        would name two builtins, is kept as its numbers)."""
        program, fingerprint, resume_point, line, live_locals, arguments, pending, ranges = plain[
            :8
        ]
        cells = plain[8] if len(plain) > 8 else None
        if ranges:
            live_locals = dict(live_locals)  # a snapshot kept as a tuple may be read again
            for name, numbers in ranges.items():
                live_locals[name] = references.range_iterator(*numbers)
        return cls(
            program,
            fingerprint,
            resume_point,
            line,
            live_locals,
            arguments,
            _pending_from_plain(pending),
            cells,
        )


_RANGE_ITERATOR = references.RANGE_ITERATOR
_range_numbers = references.range_numbers
#: Values that hold no other object (so no module global, no exception).
_LEAF_TYPES = frozenset({int, float, complex, str, bytes, bool, type(None)})
#: What a live variable that is not bound at a checkpoint reads as (it is left out).
_UNBOUND = object()


def _plain_pending(pending: Pending | None) -> tuple[Any, ...] | None:
    kind = type(pending)
    if kind is AtOperation:
        return ("at", pending.seq, pending.operation)
    if kind is Gathering:
        members = tuple(_plain_member(member) for member in pending.members)
        return ("gather", members, pending.return_exceptions, pending.first, pending.seq)
    if kind is AwaitingChild:
        return ("child",)
    if kind is Settled:
        return ("settled", pending.value)
    return None


def _plain_member(member: Member) -> tuple[Any, ...]:
    kind = type(member)
    if kind is AtOperation:
        return ("at", member.seq, member.operation)
    if kind is BranchDone:
        return ("done", member.value, member.failed)
    if member.task is not None:
        raise CheckpointException(
            "a member of asyncio.gather that is not durable code is still running, and "
            "cannot be saved"
        )
    if member.stack is None:
        return ("branch", member.records)
    return ("branch", tuple(frame.plain_record()[0] for frame in member.stack.frames))


def _member_from_plain(plain: tuple[Any, ...]) -> Member:
    kind = plain[0]
    if type(kind) is int:  # stack format 3 and 4: (seq, operation)
        return AtOperation(*plain)
    if kind == "at":
        return AtOperation(plain[1], plain[2])
    if kind == "done":
        return BranchDone(plain[1], plain[2])
    return Branch(records=plain[1])


def _pending_from_plain(plain: tuple[Any, ...] | None) -> Pending | None:
    if plain is None:
        return None
    kind = plain[0]
    if kind == "at":
        return AtOperation(plain[1], plain[2])
    if kind == "gather":
        members = [_member_from_plain(member) for member in plain[1]]
        return Gathering(members, *plain[2:])  # saved before the flags were: False
    if kind == "child":
        return AwaitingChild()
    return Settled(plain[1])


class DictWalk:
    """Iterates a dict like CPython (current values; changing its size is an error) and
    pickles with its position and the dict itself. CPython's own dict iterators pickle as a
    list of the items still to come, which would freeze the values at the checkpoint."""

    __slots__ = ("mapping", "kind", "keys", "position", "size")

    def __init__(self, mapping: dict[Any, Any], kind: str) -> None:
        self.mapping: dict[Any, Any] = mapping
        self.kind: str = kind
        self.keys: list[Any] = list(mapping)
        self.position: int = 0
        self.size: int = len(mapping)

    def __iter__(self) -> DictWalk:
        return self

    def __next__(self) -> Any:
        if len(self.mapping) != self.size:
            raise RuntimeError("dictionary changed size during iteration")
        if self.position >= len(self.keys):
            raise StopIteration
        key = self.keys[self.position]
        self.position += 1
        try:
            value = self.mapping[key]
        except KeyError:
            raise RuntimeError("dictionary keys changed during iteration") from None
        if self.kind == "keys":
            return key
        if self.kind == "values":
            return value
        return key, value


_DICT_VIEWS = {
    dict: "dict",
    type({}.keys()): "keys",
    type({}.values()): "values",
    type({}.items()): "items",
}


#: The operation layer (`fanout`), once `_operation_layer` has imported it.
_awaiting: Any = None


def _operation_layer() -> Any:
    """The module that makes what a frame awaits (`fanout`, over `operations`). It sits above
    this one, because operations are made of frames: compiled code asks its frame for the
    awaitable at each checkpoint, so the frame reaches up, through this one import."""
    global _awaiting
    from . import fanout

    _awaiting = fanout
    return fanout


class FunctionCall:
    """One frame of a durable instance (see module docstring)."""

    __slots__ = (
        "program",
        "code",
        "resume_point",
        "arguments",
        "saved_locals",
        "pending",
        "run",
        "python_frame",
        "cells",
        "stack",
        "ranges_seen",
    )

    def __init__(
        self,
        program: DurableProgram[..., Any],
        run: InstanceRun,
        *,
        arguments: tuple[Any, ...] | None = None,
        resume_point: int = 0,
        saved_locals: dict[str, Any] | None = None,
        pending: Pending | None = None,
        cells: tuple[Any, ...] | None = None,
    ) -> None:
        self.program: DurableProgram[..., Any] = program
        #: The frame's own cells (see `CodeBlock.cell_names`); made when it first runs.
        self.cells: tuple[Any, ...] | None = cells
        #: The compiled code this frame runs: the program's, or a saved older version.
        self.code: CodeBlock = program.code
        self.run: InstanceRun = run
        self.arguments: tuple[Any, ...] | None = arguments
        self.resume_point: int = resume_point
        self.saved_locals: dict[str, Any] | None = saved_locals
        self.pending: Pending | None = pending
        self.python_frame: FrameType | None = None
        #: The `CallStack` the frame is on (the instance's, or a fan-out branch's).
        self.stack: CallStack | None = None
        #: Variable -> (range iterator, start, stop, step, length) of the last snapshot.
        self.ranges_seen: dict[str, tuple] | None = None

    def __repr__(self) -> str:
        return f"<FunctionCall {self.code.qualname} at resume point {self.resume_point}>"

    def start(self) -> Any:
        """The coroutine that runs (or resumes) this frame's compiled function."""
        code = self.code
        if code.cell_names:
            cells = self.cells
            if cells is None:
                cells = self.cells = tuple(CellType() for _ in code.cell_names)
            function = code.instantiate(self.program.__wrapped__, cells)
        elif self.program.rebinds:
            function = code.instantiate(self.program.__wrapped__, ())
        else:
            function = code.function
        return function(self)

    # -- called by compiled code ----------------------------------------------------------
    def enter(self) -> int:
        """Start (0) or resume (the saved resume point) the compiled function calling this."""
        self.python_frame = sys._getframe(1)
        return self.resume_point

    def restore(self) -> dict[str, Any]:
        saved, self.saved_locals = self.saved_locals or {}, None
        return saved

    def at(self, resume_point: int, awaitable: Any) -> Any:
        """Record the checkpoint about to be awaited; link a durable operation to this frame."""
        run = self.run
        if run.stop_requested:
            return run.stop_here(awaitable, self, resume_point)
        self.resume_point = resume_point
        self.pending = None
        if type(awaitable) is CoroutineType:
            call = (_awaiting or _operation_layer()).helper_call(self.code.module, awaitable)
            if call is None:
                return awaitable
            awaitable = call
        link = getattr(awaitable, "_durable_link", None)
        if link is not None:
            # A durable operation: awaited as the coroutine that settles it at this frame.
            return link(self, resume_point)
        if type(awaitable).__name__ == "_GatheringFuture":
            fan_out = (_awaiting or _operation_layer()).fan_out_of_gather(
                self.code.module, awaitable
            )
            if fan_out is not None:
                return fan_out._durable_link(self, resume_point)
        return awaitable

    def resume(self, resume_point: int) -> Any:
        """The awaitable that settles the operation this frame was suspended in."""
        return (_awaiting or _operation_layer()).resume_pending(self, resume_point)

    def pause(self, event: str) -> Any:
        """A wait point: `raise PauseForEventException(event)` in the user's source."""
        return (_awaiting or _operation_layer()).wait_point(event)

    @property
    def closing(self) -> bool:
        """True while a stopped run is being closed: user handlers and finally blocks must not
        run then (the instance has not really left them)."""
        return self.run.closing

    enter_context: staticmethod[[Any], Any] = staticmethod(contexts.enter_context)
    exit_context: staticmethod[[Any, BaseException | None], Any] = staticmethod(
        contexts.exit_context
    )
    reenter_context: staticmethod[[Any], Any] = staticmethod(contexts.reenter_context)
    enter_context_async: staticmethod[[Any], Coroutine[Any, Any, Any]] = staticmethod(
        contexts.enter_context_async
    )
    exit_context_async: staticmethod[[Any, BaseException | None], Coroutine[Any, Any, Any]] = (
        staticmethod(contexts.exit_context_async)
    )
    reenter_context_async: staticmethod[[Any], Coroutine[Any, Any, Any]] = staticmethod(
        contexts.reenter_context_async
    )

    @staticmethod
    def iterate(iterable: Iterable[Any]) -> Iterator[Any]:
        """`iter()`, except that a dict or dict view is walked live (see `DictWalk`)."""
        kind = _DICT_VIEWS.get(type(iterable))
        if kind is not None:
            mapping = iterable if kind == "dict" else gc.get_referents(iterable.mapping)[0]
            if type(mapping) is dict:
                return DictWalk(mapping, "keys" if kind == "dict" else kind)
        return iter(iterable)

    @staticmethod
    def reenter(iterator: Iterator[Any]) -> Iterator[Any]:
        """Iterate once more without advancing: the resumed iteration is already bound."""
        return itertools.chain((None,), iterator)

    # -- snapshots ------------------------------------------------------------------------
    def record(self) -> FrameRecord:
        return FrameRecord.from_plain(self.plain_record()[0])

    def plain_record(self) -> tuple[tuple[Any, ...], bool]:
        """This frame's `FrameRecord` as `FrameRecord.from_plain` reads it, built directly
        (it is on every snapshot's path), and whether it holds only leaf values: numbers,
        strings, bytes, None — nothing that could hold a module global or an exception."""
        code = self.code
        resume_point = self.resume_point
        point = code.resume_points.get(resume_point)
        live: dict[str, Any] = {}
        ranges = None
        leaves_only = True
        if resume_point and self.python_frame is not None:
            names = point.live if point is not None else ()
            frame_locals = self.python_frame.f_locals if names else None
        else:
            names = frame_locals = self.saved_locals or {}
        for name in names:
            value = frame_locals.get(name, _UNBOUND)
            kind = type(value)
            if kind in _LEAF_TYPES:
                live[name] = value
            elif kind is _RANGE_ITERATOR:
                if ranges is None:
                    ranges = {}
                seen = self.ranges_seen
                known = seen.get(name) if seen else None
                if known is not None and known[0] is value:
                    # Seen at the last snapshot: only its position moved (see `see_range`).
                    _, start, stop, step, length = known
                    ranges[name] = (start, stop, step, length - value.__length_hint__())
                else:
                    ranges[name] = self.see_range(name, value)
            elif value is not _UNBOUND:
                live[name] = value
                leaves_only = False
        pending = self.pending
        if type(pending) is AtOperation and pending.operation is None:
            plain_pending: tuple[Any, ...] | None = ("at", pending.seq, None)
        else:
            plain_pending = _plain_pending(pending)
            if pending is not None:
                leaves_only = False
        if resume_point:
            arguments = None
        else:
            arguments = self.arguments
            if arguments:
                leaves_only = False
        record = (
            self.program.saved_as,
            code.fingerprint,
            resume_point,
            point.line if point is not None else code.first_line,
            live,
            arguments,
            plain_pending,
            ranges,
        )
        if self.cells is not None:
            record += (self.cells,)
            leaves_only = False
        elif not self.program.saved_by_name:
            leaves_only = False
        return record, leaves_only

    def see_range(self, name: str, iterator: Any) -> tuple[int, int, int, int]:
        """`references.range_numbers` of the range iterator in variable `name`, kept: at the
        next snapshot, if the variable holds the same iterator, only its position moved,
        which its length hint tells without reducing it again (which makes a range and two
        tuples)."""
        seen = self.ranges_seen
        numbers = _range_numbers(iterator)
        start, stop, step, _ = numbers
        if seen is None:
            seen = self.ranges_seen = {}
        seen[name] = (iterator, start, stop, step, len(range(start, stop, step)))
        return numbers

    @classmethod
    def from_record(
        cls, record: FrameRecord, run: InstanceRun, code_versions: dict[Any, Any]
    ) -> FunctionCall:
        """The frame `record` saved, on the code it was saved with (see
        `DurableProgram.code_for_saved_frame` for what happens when that code changed)."""
        program = program_for_saved(record.program)
        code, resume_point, live_locals = program.code_for_saved_frame(record, run, code_versions)
        frame = cls(
            program,
            run,
            arguments=record.arguments,
            resume_point=resume_point,
            saved_locals=live_locals,
            pending=record.pending,
            cells=record.cells,
        )
        frame.code = code
        pending = frame.pending
        if type(pending) is Gathering:
            for index, member in enumerate(pending.members):
                if type(member) is Branch and member.records is not None:
                    member.stack = CallStack(
                        [
                            cls.from_record(FrameRecord.from_plain(plain), run, code_versions)
                            for plain in member.records
                        ],
                        branch=branch_name(pending.seq, index),
                    )
                    member.records = None
        return frame


def branch_name(fan_out_seq: int, index: int) -> str:
    """The name of member `index` of the fan-out journaled at `fan_out_seq`: the journal
    entries of that member's frames carry it, to be found again in the same order."""
    return f"{fan_out_seq}.{index}"


class CallStack:
    """The frames of one instance (or of one branch of a fan-out), outermost first; the
    instance's stack is pickled as one object, its branches inside the frames that fan out.
    """

    def __init__(self, frames: list[FunctionCall] | None = None, branch: str | None = None) -> None:
        self.frames: list[FunctionCall] = frames or []
        #: None for the instance's own stack, else the fan-out branch it runs (`branch_name`).
        self.branch = branch
        for frame in self.frames:
            frame.stack = self

    def push(self, frame: FunctionCall) -> None:
        frame.stack = self
        self.frames.append(frame)

    def pop(self, frame: FunctionCall) -> None:
        if self.frames and self.frames[-1] is frame:
            self.frames.pop()

    def callee_of(self, frame: FunctionCall) -> FunctionCall:
        index = self.frames.index(frame)
        return self.frames[index + 1]

    @property
    def innermost(self) -> FunctionCall:
        return self.frames[-1]

    def all_frames(self) -> list[FunctionCall]:
        """Every frame: this stack's, each followed by those of the branches it fans out to."""
        frames = self.frames
        for frame in frames:
            if type(frame.pending) is Gathering:
                break
        else:
            return frames  # no fan-out (a loop: `any` of a generator costs twice as much)
        found: list[FunctionCall] = []
        for frame in frames:
            found.append(frame)
            pending = frame.pending
            if type(pending) is Gathering:
                for member in pending.members:
                    if type(member) is Branch and member.stack is not None:
                        found.extend(member.stack.all_frames())
        return found

    def resumable(self) -> bool:
        """Whether a snapshot taken now resumes: every frame is at a durable operation (or
        not started), and no fan-out member that is not durable code is running."""
        for frame in self.all_frames():
            pending = frame.pending
            if pending is None and frame.resume_point:
                return False
            if type(pending) is Gathering and any(
                type(member) is Branch and member.task is not None for member in pending.members
            ):
                return False
        return True

    def snapshot(self, out_of_line: OutOfLine | None = None) -> tuple[Any, ...] | bytes:
        """The frames as saved. Frames that hold only leaf values (numbers, strings, bytes,
        None) are saved as their plain records, ``(STACK_FORMAT, records)``, which the write
        pickles with the rest of it; other frames are pickled here, all in one pickle so that
        objects shared between frames stay shared. With `out_of_line` (a large state), they
        are always pickled here, their large strings and bytes as references to its blobs."""
        frames = self.frames
        if out_of_line is not None:
            records = tuple(frame.plain_record()[0] for frame in frames)
            try:
                data = references.dumps((STACK_FORMAT, records), self.all_frames(), out_of_line)
            except Exception as error:
                raise _explain_unpicklable(self.all_frames(), error) from error
            return data
        try:
            if len(frames) == 1:
                record, leaves_only = frames[0].plain_record()
                records: tuple[Any, ...] = (record,)
            else:
                plain = [frame.plain_record() for frame in frames]
                records = tuple(record for record, _ in plain)
                leaves_only = all(leaves for _, leaves in plain)
            if leaves_only:
                # Nothing in it can be a module global, an exception or a shared object.
                data: tuple[Any, ...] | bytes = (STACK_FORMAT, records)
            else:
                data = references.dumps((STACK_FORMAT, records), self.all_frames())
        except Exception as error:
            raise _explain_unpicklable(self.all_frames(), error) from error
        return data

    @classmethod
    def from_snapshot(
        cls, data: tuple[Any, ...] | bytes, run: InstanceRun, code_versions: dict[Any, Any]
    ) -> CallStack:
        """The call stack `snapshot` saved (as its tuple or its pickle), its large values
        the objects of the run's `out_of_line`."""
        if type(data) is tuple:
            stack_format, frames = data
        else:
            stack_format, frames = references.loads(data, None, run.out_of_line)
        if stack_format not in _READABLE_FORMATS:
            raise IncompatibleStateError(
                f"instance {run.instance_id!r}: its call stack was saved in format "
                f"{stack_format}, this version reads format {STACK_FORMAT}"
            )
        return cls(
            [
                FunctionCall.from_record(FrameRecord.from_plain(plain), run, code_versions)
                for plain in frames
            ]
        )

    def journal_floor(self, next_seq: int) -> int:
        """The oldest journal sequence number a resume from a snapshot taken now reads."""
        floor = next_seq
        for frame in self.frames:  # and those of the branches, below (not `all_frames`)
            pending = frame.pending
            kind = type(pending)
            if kind is AtOperation:
                if pending.seq < floor:
                    floor = pending.seq
            elif kind is Gathering:
                if pending.seq and pending.seq < floor:
                    floor = pending.seq
                for member in pending.members:
                    kind = type(member)
                    if kind is AtOperation:
                        floor = min(floor, member.seq)
                    elif kind is Branch and member.stack is not None:
                        floor = member.stack.journal_floor(floor)
        return floor

    def code_versions(self) -> dict[Any, Any]:
        """fingerprint -> `CodeVersion` of every frame's code, to save with the instance."""
        return {frame.code.fingerprint: frame.code.version for frame in self.all_frames()}


def _live_values(frame: FunctionCall) -> tuple[FrameRecord, dict[str, Any]]:
    """The frame's record, and the values it saves: live locals, arguments, cells."""
    record = frame.record()
    values = dict(record.live_locals)
    if record.arguments is not None:
        values.update({f"argument {i}": v for i, v in enumerate(record.arguments)})
    for name, cell in zip(frame.code.cell_names, record.cells or (), strict=False):
        with contextlib.suppress(ValueError):  # an empty cell: an unbound variable
            values[name] = cell.cell_contents
    return record, values


def largest_live_values(frames: list[FunctionCall], count: int = 3) -> list[tuple[str, int]]:
    """The `count` values of `frames` that weigh the most pickled, largest first: where
    each is live (function, variable, type, line), and its size in bytes. Values are
    pickled in turn by one pickler, named variables before the compiler's temporaries, so
    an object two of them share is counted once, for the first (a temporary holding
    ``conversation.append`` weighs only the method, not the list again)."""
    buffer = io.BytesIO()
    pickler = cloudpickle.CloudPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    named, temporaries = [], []
    for frame in frames:
        code = frame.code
        record, values = _live_values(frame)
        for name, value in values.items():
            description = code.temp_descriptions.get(name)
            place = (
                f"{code.module}.{code.qualname}: {description or f'local variable {name!r}'} "
                f"({type(value).__name__}), line {record.line}"
            )
            (named if description is None else temporaries).append((place, value))
    sized = []
    for place, value in named + temporaries:
        before = buffer.tell()
        try:
            pickler.dump(value)
        except Exception:
            continue
        sized.append((buffer.tell() - before, place))
    sized.sort(key=lambda item: -item[0])
    return [(place, size) for size, place in sized[:count]]


def _explain_unpicklable(frames: list[FunctionCall], error: Exception) -> CheckpointException:
    """Find the variable that could not be pickled and say where it is live."""
    for frame in frames:
        code = frame.code
        record, values = _live_values(frame)
        for name, value in values.items():
            try:
                # The pickler of the state: plain cloudpickle refuses values it saves (a
                # coroutine not started yet) and would name them instead of the culprit.
                references.dumps(value)
            except Exception as cause:
                what = code.temp_descriptions.get(name, f"local variable {name!r}")
                return CheckpointException(
                    f"{code.module}.{code.qualname}: {what} ({type(value).__name__}) is live "
                    f"at the checkpoint at line {record.line} and cannot be pickled ({cause}); "
                    "make it picklable, or create it after the checkpoint / delete it before"
                )
    return CheckpointException(f"the call stack cannot be pickled: {error}")


@dataclass(frozen=True, slots=True)
class FrameView:
    """One frame of a saved call stack, to look at: the function, the line it resumes at,
    its live locals, and what it awaits there. Branches of a fan-out are frames too."""

    function: str
    line: int
    live_locals: dict[str, Any]
    #: "operation N" (a durable call or wait, by journal sequence number), "N awaitables"
    #: (a fan-out), "the frame below" (a call of a helper), or "" (settled, about to go on).
    awaiting: str
    #: The frames of the fan-out's branches still running, each its own stack.
    branches: tuple[tuple[FrameView, ...], ...] = ()


def saved_stack(
    snapshot: tuple[Any, ...] | bytes, loads: Any, blobs: dict[Any, Any] | None = None
) -> tuple[Any, ...]:
    """(stack format, frame records) of a state's snapshot, read with `loads` (a pickled
    snapshot; a restricted one shows an untrusted store without running it), its large
    values found in `blobs` (the state's ``"blobs"``)."""
    if type(snapshot) is tuple:
        return snapshot
    return loads(snapshot, blobs) if blobs else loads(snapshot)


def saved_frames(
    snapshot: tuple[Any, ...] | bytes | None, loads: Any, blobs: dict[Any, Any] | None = None
) -> list[FrameView]:
    """The frames a state's snapshot holds, outermost first (see `saved_stack`)."""
    if snapshot is None:
        return []
    stack_format, records = saved_stack(snapshot, loads, blobs)
    if stack_format not in _READABLE_FORMATS:
        raise IncompatibleStateError(
            f"the call stack was saved in format {stack_format}, this version reads format "
            f"{STACK_FORMAT}"
        )
    return [_frame_view(FrameRecord.from_plain(plain)) for plain in records]


def _frame_view(record: FrameRecord) -> FrameView:
    pending = record.pending
    awaiting, branches = "", ()
    if type(pending) is AtOperation:
        awaiting = f"operation {pending.seq}"
    elif type(pending) is Gathering:
        awaiting = f"{len(pending.members)} awaitables"
        branches = tuple(
            tuple(_frame_view(FrameRecord.from_plain(plain)) for plain in member.records)
            for member in pending.members
            if type(member) is Branch and member.records
        )
    elif type(pending) is AwaitingChild:
        awaiting = "the frame below"
    return FrameView(record.program, record.line, dict(record.live_locals), awaiting, branches)
