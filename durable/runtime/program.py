"""`make_durable` and `DurableProgram`: a compiled durable function and how it is called.

The top of the runtime: a program is registered in `catalog` (so a saved frame finds it
again in a new process) and runs its instances through a backend's `DurableRuntime`.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from .._errors import AlreadyDurableException
from .backend import given_or_default, runtime_for
from .catalog import importable_name, program_for_key, register
from .context import current_run
from .handles import InstanceHandle
from .journal import DEFAULT_POLICY, JournalPolicy
from .operations import ChildCall
from .references import pickle_by_name
from .saved_code import CodeChangePolicy, Migration, code_for_saved_frame

if TYPE_CHECKING:
    from typing import Self

    from ..transform.pipeline import CodeBlock, CodeVersion
    from .backend import OrchestrationBackend
    from .frames import FrameRecord
    from .runtime import InstanceRun

#: `program_for_key` stays importable from here: pickles of programs made before the
#: catalog had a module of its own name it in this one.
__all__ = ["CodeChangePolicy", "DurableProgram", "Migration", "make_durable", "program_for_key"]

P = ParamSpec("P")
R = TypeVar("R")


class DurableProgram(Generic[P, R]):
    """A durable function. Await it like the original, plus two keyword arguments.

    ``await program(*args, orchestration_backend=backend, instance_id="order-7", **kwargs)``
    runs or resumes the instance ``instance_id`` in ``backend`` (the process-wide default
    backend when omitted); ``await program.using(backend, instance_id="order-7")(*args,
    **kwargs)`` is the same call in a form type checkers check. Awaited inside another
    durable function without those keywords, it runs as a nested frame of the caller's
    instance.
    """

    #: Awaited where a checkpoint cannot resume, a compile error (DUR104).
    __durable_operation__ = True

    def __init__(
        self,
        fn: Callable[P, Coroutine[Any, Any, R]],
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
        from ..transform.pipeline import compile_function  # libcst: only where code compiles

        self.code: CodeBlock = compile_function(fn)
        self.key: str = f"{importable_name(fn.__module__)}:{fn.__qualname__}"
        self.migrations: dict[str, Migration] = dict(migrations or {})
        self.on_code_change: CodeChangePolicy = on_code_change
        self.journal_policy: JournalPolicy = journal if journal is not None else DEFAULT_POLICY
        self._saved_versions: dict[str, CodeBlock] = {}
        #: How a frame of this function is saved and found again: by its key.
        self.saved_as: str = self.key
        self.saved_by_name: bool = True
        self.rebinds: bool = False  # `code.function` is already bound to its closure and globals
        self.__wrapped__: Callable[P, Coroutine[Any, Any, R]] = fn
        functools.update_wrapper(self, fn)
        register(self)

    def __repr__(self) -> str:
        return f"<DurableProgram {self.key}>"

    if TYPE_CHECKING:
        # Checked as the function itself: a ParamSpec takes no extra keywords, so a type
        # checker sees the `orchestration_backend=`/`instance_id=` form as an error and
        # `using(...)` is its checked spelling. At run time both are accepted.
        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

    else:

        def __call__(self, *args, orchestration_backend=None, instance_id=None, **kwargs):
            if orchestration_backend is None and instance_id is None and current_run() is not None:
                return ChildCall(self, args, kwargs)

            backend = given_or_default(orchestration_backend)
            return runtime_for(backend).run(self, instance_id, args, kwargs)

    def using(
        self,
        orchestration_backend: OrchestrationBackend | None = None,
        *,
        instance_id: str | None = None,
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        """This program, called with the function's own arguments, in `orchestration_backend`
        as instance `instance_id`: ``await flow.using(backend, instance_id="order-7")(1, "a")``
        is ``await flow(1, "a", orchestration_backend=backend, instance_id="order-7")``, in a
        form a type checker checks (the arguments against the function's parameters, the
        result as its return type).

        Either may be omitted, as with the keywords: the default backend without a backend,
        a new instance id without one; with neither, inside another durable function, the
        call runs as a nested frame of the caller's instance.
        """
        call: Callable[..., Coroutine[Any, Any, R]] = self

        def using_options(*args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
            return call(
                *args,
                orchestration_backend=orchestration_backend,
                instance_id=instance_id,
                **kwargs,
            )

        functools.update_wrapper(using_options, self.__wrapped__)
        return using_options

    async def start(
        self,
        *args: Any,
        instance_id: str,
        orchestration_backend: OrchestrationBackend | None = None,
        **kwargs: Any,
    ) -> InstanceHandle[R]:
        """Save a new instance with these arguments without running it; return its handle.

        The next call of the program with this `instance_id` (or a worker) runs it. Starting
        an instance that exists with the same arguments changes nothing and returns its
        handle; with other arguments it raises `ArgumentsMismatchError`.
        """

        backend = given_or_default(orchestration_backend)
        await runtime_for(backend).start(self, instance_id, args, kwargs)
        return InstanceHandle(instance_id, backend)

    def handle(
        self, instance_id: str, *, orchestration_backend: OrchestrationBackend | None = None
    ) -> InstanceHandle[R]:
        """The handle of instance `instance_id` (started here or in another process)."""

        backend = given_or_default(orchestration_backend)
        return InstanceHandle(instance_id, backend)

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> Any: ...

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self) -> tuple[Callable[[str], Any], tuple[str]]:
        return (program_for_key, (self.key,))

    def code_for_saved_frame(
        self, record: FrameRecord, run: InstanceRun, code_versions: Mapping[str, CodeVersion]
    ) -> tuple[CodeBlock, int, dict[str, Any]]:
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


@overload
def make_durable(
    fn: Callable[P, Coroutine[Any, Any, R]],
    /,
    *,
    migrations: Mapping[str, Migration] | None = None,
    on_code_change: CodeChangePolicy = "resume_saved_version",
    journal: JournalPolicy | None = None,
) -> DurableProgram[P, R]: ...


@overload
def make_durable(
    *,
    migrations: Mapping[str, Migration] | None = None,
    on_code_change: CodeChangePolicy = "resume_saved_version",
    journal: JournalPolicy | None = None,
) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], DurableProgram[P, R]]: ...


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
