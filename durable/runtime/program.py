"""`make_durable` and `DurableProgram`: a compiled durable function and how it is called.

Programs are registered by ``module:qualname`` so a saved frame finds its code again in a
new process (after the defining module is imported).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import types
from collections.abc import Callable
from typing import Any

from .._errors import AlreadyDurableException, IncompatibleStateError
from ..transform import CodeBlock, compile_function
from .context import current_run
from .operations import ChildCall

_programs: dict[str, DurableProgram] = {}


class DurableProgram:
    """A durable function. Await it like the original, plus two keyword arguments.

    ``await program(*args, orchestration_backend=backend, instance_id="order-7", **kwargs)``
    runs or resumes the instance ``instance_id`` in ``backend`` (the process-wide default
    backend when omitted). Awaited inside another durable function without those keywords,
    it runs as a nested frame of the caller's instance.
    """

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.code: CodeBlock = compile_function(fn)
        self.key = f"{fn.__module__}:{fn.__qualname__}"
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

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return types.MethodType(self, instance)

    def __reduce__(self):
        return (program_for_key, (self.key,))


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


def make_durable(fn: Callable[..., Any]) -> DurableProgram:
    """Compile an ``async def`` function into a `DurableProgram`. Also usable as a decorator.

    Raises `TypeError` for anything but an ``async def`` function, `AlreadyDurableException`
    for a durable one, `NoSourceCodeException` when its source cannot be read, and
    `DurableCompileError` (listing every problem with file, line and a fix) for code that
    cannot be made resumable.
    """
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
    return DurableProgram(fn)
