"""`make_durable` and `DurableProgram`: a compiled durable function and how it is called.

Programs are registered by ``module:qualname`` so a saved frame finds its code again in a
new process (after the defining module is imported).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .._errors import AlreadyDurableException, IncompatibleStateError
from ..transform import CodeBlock, compile_function
from ..transform.pipeline import CodeVersion, compile_version
from .context import current_run
from .handles import InstanceHandle
from .journal import DEFAULT_POLICY, JournalPolicy
from .operations import ChildCall

#: ``migrate(saved_line, live_locals) -> (new_line, new_live_locals)``.
Migration = Callable[[int, dict[str, Any]], tuple[int, dict[str, Any]]]
CodeChangePolicy = Literal["resume_saved_version", "fail"]

_programs: dict[str, DurableProgram] = {}


class DurableProgram:
    """A durable function. Await it like the original, plus two keyword arguments.

    ``await program(*args, orchestration_backend=backend, instance_id="order-7", **kwargs)``
    runs or resumes the instance ``instance_id`` in ``backend`` (the process-wide default
    backend when omitted). Awaited inside another durable function without those keywords,
    it runs as a nested frame of the caller's instance.
    """

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
        self.key = f"{fn.__module__}:{fn.__qualname__}"
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
        _programs[self.key] = self

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
        from .backend import default_backend, runtime_for

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
        from .backend import default_backend, runtime_for

        backend = orchestration_backend if orchestration_backend is not None else default_backend()
        await runtime_for(backend).start(self, instance_id, args, kwargs)
        return InstanceHandle(instance_id, backend)

    def handle(self, instance_id: str, *, orchestration_backend: Any = None) -> InstanceHandle:
        """The handle of instance `instance_id` (started here or in another process)."""
        from .backend import default_backend

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


def code_for_saved_frame(
    current: CodeBlock | None,
    fn: Callable[..., Any],
    saved_versions: dict[str, CodeBlock],
    policy: DurableProgram,
    record,
    run,
    code_versions: Mapping[str, CodeVersion],
):
    """(code, resume point, live locals) to resume a frame saved by `fn`, whose code now
    compiles to `current` (None: it no longer compiles). `policy` is the program whose
    ``migrations`` and ``on_code_change`` apply: the function's own, or for a helper the
    instance's entry program."""
    if current is not None and record.fingerprint == current.fingerprint:
        return current, record.resume_point, record.live_locals
    migration = next(
        (m for fp, m in policy.migrations.items() if record.fingerprint.startswith(fp)), None
    )
    if migration is not None and current is not None:
        line, live_locals = migration(record.line, dict(record.live_locals))
        return current, current.resume_point_at(line), live_locals
    version = code_versions.get(record.fingerprint)
    if version is not None and policy.on_code_change == "resume_saved_version":
        saved = saved_versions.get(record.fingerprint)
        if saved is None:
            saved = saved_versions[record.fingerprint] = compile_version(version, fn)
        return saved, record.resume_point, record.live_locals
    reason = (
        "on_code_change='fail' refuses to resume on the saved version"
        if version is not None
        else "the instance carries no copy of that code"
    )
    now = (
        f"now compiles to version {current.fingerprint[:16]}"
        if current is not None
        else "no longer compiles"
    )
    raise IncompatibleStateError(
        f"instance {run.instance_id!r}: {fn.__qualname__} was suspended at line "
        f"{record.line} by code version {record.fingerprint[:16]}, but the function {now} "
        f"and {reason}; restore the old code, or pass make_durable(..., migrations="
        f"{{'{record.fingerprint[:16]}': migrate}}) to the entry function with "
        "migrate(line, live_locals) -> (new_line, live_locals)"
    )


def program_for_saved(saved_as: Any) -> Any:
    """The program a saved frame names: a durable program by key, or a helper function."""
    if type(saved_as) is str:
        return program_for_key(saved_as)
    from .helpers import helper_for_saved

    return helper_for_saved(saved_as)


def program_for_key(key: str) -> DurableProgram:
    """The registered program `module:qualname`, importing its module if needed."""
    program = _programs.get(key)
    if program is None:
        module = key.partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise IncompatibleStateError(
                f"saved state refers to durable function {key!r}, but its module cannot be "
                f"imported ({error})"
            ) from None
        program = _programs.get(key)
    if program is None:
        raise IncompatibleStateError(
            f"saved state refers to durable function {key!r}, which no longer exists; import "
            "the module that defines it, or restore the function under that name"
        )
    return program


def make_durable(
    fn: Callable[..., Any] | None = None,
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
    return DurableProgram(
        fn, migrations=migrations, on_code_change=on_code_change, journal=journal
    )
