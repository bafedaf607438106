"""Running one instance: start, resume, pause, finish — and the state record that is saved.

`DurableRuntime` applies the call-semantics table (new / running / waiting / completed /
failed / busy / other arguments) and drives the compiled coroutine; `InstanceRun` is one
run of one instance and writes its checkpoints through the backend.
"""

from __future__ import annotations

import hashlib
import pickle
import time
import uuid
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._errors import (
    ArgumentsMismatchError,
    CheckpointException,
    InstanceBusyError,
    PauseForEventException,
    StateFormatError,
)
from .._ids import validate_instance_id
from . import references
from .context import enter_run, leave_run
from .frames import AwaitingEvent, CallStack, FunctionCall, Settled
from .operations import PARK

if TYPE_CHECKING:
    from .backend import OrchestrationBackend
    from .program import DurableProgram

#: Version of the state dictionary handed to `OrchestrationBackend.save_state`.
STATE_FORMAT = 1

RUNNING, WAITING, COMPLETED, FAILED = "running", "waiting", "completed", "failed"


def _digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


class InstanceRun:
    """One run of one instance: its call stack and the state it writes at each checkpoint."""

    def __init__(
        self,
        backend: OrchestrationBackend,
        instance_id: str,
        program: DurableProgram,
        arguments_blob: bytes,
        created_at: float,
    ) -> None:
        self.backend = backend
        self.instance_id = instance_id
        self.program = program
        self.arguments_blob = arguments_blob
        self.created_at = created_at
        self.stack = CallStack()
        self.waiting_for: AwaitingEvent | None = None
        #: Set when the run stops without finishing (parked, or its state could not be
        #: saved): unwinding its coroutines must not run the user's handlers or finally.
        self.closing = False

    def state(self, status: str, **fields: Any) -> dict[str, Any]:
        return {
            "format_version": STATE_FORMAT,
            "instance_id": self.instance_id,
            "program": self.program.key,
            "status": status,
            "arguments": self.arguments_blob,
            "arguments_digest": _digest(self.arguments_blob),
            "created_at": self.created_at,
            "updated_at": time.time(),
            "snapshot": None,
            "waiting_for": None,
            "deadline": None,
            "result": None,
            "error": None,
            **fields,
        }

    def checkpoint(self, waiting_for: AwaitingEvent | None = None) -> None:
        """Save the whole call stack: one `save_state` (one store write)."""
        try:
            snapshot = self.stack.snapshot()
            self.waiting_for = waiting_for
            versions = self.stack.code_versions()
            if waiting_for is None:
                state = self.state(RUNNING, snapshot=snapshot, code_versions=versions)
            else:
                state = self.state(
                    WAITING,
                    snapshot=snapshot,
                    code_versions=versions,
                    waiting_for=waiting_for.name,
                    deadline=waiting_for.deadline,
                )
            self.backend.save_state(self.instance_id, state)
        except BaseException:
            # The instance stays at its last saved checkpoint, as after a crash here: unwinding
            # must not run the user's handlers or finally blocks.
            self.closing = True
            raise

    def complete(self, value: Any) -> None:
        try:
            result = cloudpickle.dumps(value)
        except Exception as error:
            raise CheckpointException(
                f"instance {self.instance_id!r}: the result of {self.program.code.qualname} "
                f"({type(value).__name__}) cannot be pickled ({error}); return a picklable value"
            ) from error
        self.backend.save_state(self.instance_id, self.state(COMPLETED, result=result))

    def fail(self, error: BaseException) -> None:
        self.backend.save_state(self.instance_id, self.state(FAILED, error=_pickle_error(error)))


def _pickle_error(error: BaseException) -> bytes:
    """The exception itself when it survives a pickle round trip, else a faithful summary."""
    try:
        blob = references.dumps(error)
        references.loads(blob)
        return blob
    except Exception:
        from .._errors import DurableError

        summary = DurableError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
        return references.dumps(summary)


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

    async def run(
        self, program: DurableProgram, instance_id: str | None, args: tuple, kwargs: dict
    ) -> Any:
        instance_id = (
            validate_instance_id(instance_id) if instance_id is not None else uuid.uuid4().hex
        )
        if instance_id in self._active:
            raise InstanceBusyError(
                f"instance {instance_id!r} is already running in this process; wait for that "
                "call to finish (an instance has one runner at a time)"
            )
        self._active.add(instance_id)
        try:
            return await self._run(program, instance_id, args, kwargs)
        finally:
            self._active.discard(instance_id)

    async def _run(self, program, instance_id: str, args: tuple, kwargs: dict) -> Any:
        arguments = program.code.bind(*args, **kwargs)
        arguments_blob = _pickle_arguments(program, arguments)
        state = self.backend.load_state(instance_id)
        if state is None:
            run = InstanceRun(self.backend, instance_id, program, arguments_blob, time.time())
            run.stack.push(FunctionCall(program, run, arguments=arguments))
            run.checkpoint()
        else:
            run = self._reopen(program, instance_id, state, arguments, arguments_blob)
            if run is None:
                return _stored_outcome(state)
        root = run.stack.frames[0]
        driver = _Driver(root.code.function(root), run)
        token = enter_run(run)
        try:
            value = await driver
        except CheckpointException:
            raise
        except Exception as error:
            run.fail(error)
            raise
        finally:
            leave_run(token)
        if driver.parked:
            raise PauseForEventException(run.waiting_for.name, instance_id=instance_id)
        run.complete(value)
        return value

    def _reopen(self, program, instance_id, state, arguments, arguments_blob) -> InstanceRun | None:
        """A run resuming stored `state`, or None when the instance has finished."""
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
        if state["arguments_digest"] != _digest(arguments_blob) and not _same_arguments(
            state["arguments"], arguments
        ):
            stored = cloudpickle.loads(state["arguments"])
            raise ArgumentsMismatchError(
                f"instance {instance_id!r} was started with arguments {stored!r}, but was "
                f"called with {arguments!r}; call it with its original arguments, or use "
                "a new instance_id"
            )
        status = state["status"]
        if status in (COMPLETED, FAILED):
            return None
        run = InstanceRun(
            self.backend, instance_id, program, state["arguments"], state["created_at"]
        )
        run.stack = CallStack.from_snapshot(
            state["snapshot"], run, state.get("code_versions") or {}
        )
        if status == WAITING:
            innermost = run.stack.innermost
            pending = innermost.pending
            delivered = self.backend.wait_for_event(instance_id, pending.name)
            if delivered is not None:
                innermost.pending = Settled(delivered.payload)
            elif pending.deadline is None or time.time() < pending.deadline:
                raise PauseForEventException(pending.name, instance_id=instance_id)
        return run


def _pickle_arguments(program, arguments: tuple) -> bytes:
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


def _same_arguments(stored_blob: bytes, arguments: tuple) -> bool:
    try:
        return bool(cloudpickle.loads(stored_blob) == arguments)
    except Exception:
        return False


def _stored_outcome(state: dict[str, Any]) -> Any:
    if state["status"] == COMPLETED:
        return cloudpickle.loads(state["result"])
    raise references.loads(state["error"])
