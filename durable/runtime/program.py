"""`make_durable` and `DurableProgram`: a compiled durable function and how it is called.

The top of the runtime: a program is registered in `catalog` (so a saved frame finds it
again in a new process) and runs its instances through a backend's `DurableRuntime`.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import AlreadyDurableException
from ..transform import CodeBlock, compile_function
from ..transform.pipeline import CodeVersion
from .backend import default_backend, runtime_for
from .catalog import importable_name, program_for_key, register
from .context import current_run
from .handles import InstanceHandle
from .journal import DEFAULT_POLICY, JournalPolicy
from .operations import ChildCall
from .references import pickle_by_name
from .saved_code import CodeChangePolicy, Migration, code_for_saved_frame

#: `program_for_key` stays importable from here: pickles of programs made before the
#: catalog had a module of its own name it in this one.
__all__ = ["CodeChangePolicy", "DurableProgram", "Migration", "make_durable", "program_for_key"]


class DurableProgram:
    """A durable function. Await it like the original, plus two keyword arguments.

    ``await program(*args, orchestration_backend=backend, instance_id="order-7", **kwargs)``
    runs or resumes the instance ``instance_id`` in ``backend`` (the process-wide default
    backend when omitted). Awaited inside another durable function without those keywords,
    it runs as a nested frame of the caller's instance.
    """

    #: Awaited where a checkpoint cannot resume, a compile error (DUR104).
    __durable_operation__ = True

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        migrations: Mapping[str, Migration] | None = None,
        on_code_change: CodeChangePolicy = "resume_saved_version",
        journal: JournalPolicy | None = None,
    ) -> None:
        if journal is not None and not isinstance(journal, JournalPolicy):
            raise TypeError(f"journal must be a durable.JournalPolicy, got {journal!r}")
        if on_code_change not in ("resume_saved_version", "fail"):
            raise ValueError(
                f"on_code_change must be 'resume_saved_version' or 'fail', got {on_code_change!r}"
            )
        for fingerprint, migration in (migrations or {}).items():
            if not isinstance(fingerprint, str) or len(fingerprint) < 12:
                raise ValueError(
                    f"a migration is keyed by the old code's fingerprint (at least its first 12 "
                    f"hex digits, as error messages print them), got {fingerprint!r}"
                )
            if not callable(migration):
                raise TypeError(f"the migration for {fingerprint!r} must be callable")
        self.code: CodeBlock = compile_function(fn)
        self.key = f"{importable_name(fn.__module__)}:{fn.__qualname__}"
        self.migrations = dict(migrations or {})
        self.on_code_change = on_code_change
        self.journal_policy = journal if journal is not None else DEFAULT_POLICY
        self._saved_versions: dict[str, CodeBlock] = {}
        #: How a frame of this function is saved and found again: by its key.
        self.saved_as = self.key
        self.saved_by_name = True
        self.rebinds = False  # `code.function` is already bound to its closure and globals
        self.__wrapped__ = fn
        functools.update_wrapper(self, fn)
        register(self)

    def __repr__(self) -> str:
        return f"<DurableProgram {self.key}>"

    def __call__(
        self,
        *args: Any,
        orchestration_backend: Any = None,
        instance_id: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if orchestration_backend is None and instance_id is None and current_run() is not None:
            return ChildCall(self, args, kwargs)

        backend = orchestration_backend if orchestration_backend is not None else default_backend()
        return runtime_for(backend).run(self, instance_id, args, kwargs)

    async def start(
        self,
        *args: Any,
        instance_id: str,
        orchestration_backend: Any = None,
        **kwargs: Any,
    ) -> InstanceHandle:
        """Save a new instance with these arguments without running it; return its handle.

        The next call of the program with this `instance_id` (or a worker) runs it. Starting
        an instance that exists with the same arguments changes nothing and returns its
        handle; with other arguments it raises `ArgumentsMismatchError`.
        """

        backend = orchestration_backend if orchestration_backend is not None else default_backend()
        await runtime_for(backend).start(self, instance_id, args, kwargs)
        return InstanceHandle(instance_id, backend)

    def handle(self, instance_id: str, *, orchestration_backend: Any = None) -> InstanceHandle:
        """The handle of instance `instance_id` (started here or in another process)."""

        backend = orchestration_backend if orchestration_backend is not None else default_backend()
        return InstanceHandle(instance_id, backend)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self):
        return (program_for_key, (self.key,))

    def code_for_saved_frame(self, record, run, code_versions: Mapping[str, CodeVersion]):
        """(code, resume point, live locals) to resume a frame saved by this function.

        The same code: as saved. Changed code: a migration registered for the saved
        fingerprint maps the frame onto the current code; otherwise the frame resumes on the
        code version saved with the instance (unless ``on_code_change="fail"``). Never
        silently on different code.
        """
        return code_for_saved_frame(
            self.code, self.__wrapped__, self._saved_versions, self, record, run, code_versions
        )


pickle_by_name(DurableProgram)


#: `make_durable`'s function when none is given (used as a decorator with options): an
#: explicit None is a mistake, not this.
_DECORATING = object()


def make_durable(
    fn: Any = _DECORATING,
    /,
    *,
    migrations: Mapping[str, Migration] | None = None,
    on_code_change: CodeChangePolicy = "resume_saved_version",
    journal: JournalPolicy | None = None,
) -> Any:
    """Compile an ``async def`` function into a `DurableProgram`. Also usable as a decorator,
    with or without options (``@make_durable`` or ``@make_durable(migrations=...)``).

    When the function's code changes while instances are suspended in it, those instances
    resume on the code version saved with them (``on_code_change="resume_saved_version"``,
    the default), or — with ``on_code_change="fail"`` — stop with `IncompatibleStateError`.
    ``migrations`` maps an old code fingerprint to ``migrate(line, live_locals) ->
    (new_line, live_locals)``, which moves a saved frame onto the current code instead.
    ``journal`` (a `JournalPolicy`) sets how often a snapshot is written and how much
    journal history is kept.

    Raises `TypeError` for anything but an ``async def`` function, `AlreadyDurableException`
    for a durable one, `NoSourceCodeException` when its source cannot be read, and
    `DurableCompileError` (listing every problem with file, line and a fix) for code that
    cannot be made resumable.
    """
    if fn is None:
        raise TypeError(
            "make_durable expects an 'async def' function, got None; use @make_durable or "
            "@make_durable(option=...) as a decorator, or make_durable(function)"
        )
    if fn is _DECORATING:
        return functools.partial(
            make_durable, migrations=migrations, on_code_change=on_code_change, journal=journal
        )
    if isinstance(fn, DurableProgram):
        raise AlreadyDurableException(
            f"{fn.code.qualname} is already durable; apply make_durable to it only once"
        )
    if not isinstance(fn, types.FunctionType):
        kind = "a builtin" if inspect.isbuiltin(fn) else f"a {type(fn).__name__}"
        raise TypeError(f"make_durable expects an 'async def' function, got {kind}: {fn!r}")
    if fn.__name__ == "<lambda>":
        raise TypeError(
            "make_durable cannot compile a lambda; define an 'async def' function instead"
        )
    if inspect.isasyncgenfunction(fn):
        raise TypeError(
            f"make_durable cannot compile {fn.__qualname__}: it is an async generator "
            "(it uses 'yield'); return a list instead"
        )
    if not inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"make_durable expects an 'async def' function, but {fn.__qualname__} is a "
            "regular function; define it with 'async def'"
        )
    return DurableProgram(fn, migrations=migrations, on_code_change=on_code_change, journal=journal)
