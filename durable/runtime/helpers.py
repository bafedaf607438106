"""Undecorated ``async def`` helpers of the user's code, run as frames of the instance.

Owns the rule for which coroutine functions count as the user's own code (with explicit
`include_helpers` / `exclude_helpers`), the compiled code of each helper (once per code
object), and turning an awaited, not yet started coroutine of a helper into a nested frame.
"""

from __future__ import annotations

import inspect
import logging
import site
import sysconfig
import types
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import DurableCompileError, NoSourceCodeException
from .catalog import program_for_key
from .references import findable, function_of
from .saved_code import code_for_saved_frame

if TYPE_CHECKING:
    from ..transform.pipeline import CodeBlock, CodeVersion
    from .frames import FrameRecord
    from .runtime import InstanceRun

logger: logging.Logger = logging.getLogger("durable.runtime")


class ByCode(dict[Any, Any]):
    """A dict keyed by code objects by identity: equal code objects (the same function in
    two modules, or a module imported twice) are still different functions."""

    def __getitem__(self, code: types.CodeType) -> Any:
        kept, value = dict.__getitem__(self, id(code))
        if kept is not code:
            raise KeyError(code)
        return value

    def __setitem__(self, code: types.CodeType, value: Any) -> None:
        dict.__setitem__(self, id(code), (code, value))

    def __contains__(self, code: object) -> bool:
        entry = dict.get(self, id(code))
        return entry is not None and entry[0] is code

    def get(self, code: types.CodeType, default: Any = None) -> Any:
        entry = dict.get(self, id(code))
        return entry[1] if entry is not None and entry[0] is code else default


#: Module name -> explicit decision for it and its submodules.
_module_rules: dict[str, bool] = {}
#: Code object -> explicit decision for that one function.
_function_rules = ByCode()
#: Module of the awaiting frame -> callee code -> its `_HelperCode`, or None (runs plainly).
_decisions: dict[str, ByCode] = {}
#: Code object -> its `_HelperCode`, whoever awaits it.
_compiled = ByCode()
#: Code objects that did not compile -> why, for the error a durable operation in them gives.
compile_failures: ByCode = ByCode()

_CO_VARARGS = inspect.CO_VARARGS
_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS
_NEVER_HELPERS = ("durable", "asyncio")


def include_helpers(*targets: str | types.ModuleType | Callable[..., Any]) -> None:
    """Run these async functions as durable frames when a durable function awaits them:
    modules (a name covers its submodules) or single functions. Overrides the default rule
    and an earlier `exclude_helpers` of the same target."""
    _set_rules(targets, True)


def exclude_helpers(*targets: str | types.ModuleType | Callable[..., Any]) -> None:
    """Run these async functions plainly, never as frames (a durable operation inside one
    is then an error): modules (a name covers its submodules) or single functions."""
    _set_rules(targets, False)


def _set_rules(targets, decision: bool) -> None:
    for target in targets:
        if isinstance(target, str):
            if not target or any(not part.isidentifier() for part in target.split(".")):
                raise ValueError(f"expected a dotted module name, got {target!r}")
            _module_rules[target] = decision
        elif isinstance(target, types.ModuleType):
            _module_rules[target.__name__] = decision
        else:
            function = inspect.unwrap(target)
            code = getattr(function, "__code__", None)
            if code is None or not inspect.iscoroutinefunction(function):
                raise TypeError(
                    f"expected a module, a module name or an 'async def' function, got {target!r}"
                )
            _function_rules[code] = decision
    for decided in _decisions.values():
        decided.clear()


def is_users_code(function: types.FunctionType, awaiting_module: str) -> bool:
    """The helper rule (docs/guide.md, "Helpers"): an explicit include or exclude of the
    function, else of its module (the longest matching name wins); else the same top-level
    package as the durable function awaiting it; else any module whose file lies outside
    the Python installation and its site-packages. `durable` and `asyncio` never count."""
    explicit = _function_rules.get(function.__code__)
    if explicit is not None:
        return explicit
    module = function.__module__ or ""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        rule = _module_rules.get(".".join(parts[:length]))
        if rule is not None:
            return rule
    if parts[0] in _NEVER_HELPERS:
        return False
    if parts[0] == awaiting_module.split(".")[0]:
        return True
    return not _installed(function.__code__.co_filename)


def _installed(filename: str) -> bool:
    if not filename or filename.startswith("<"):
        return True  # no file: built by exec or frozen, no source to compile
    return filename.startswith(_installed_prefixes()) or any(
        part in ("site-packages", "dist-packages") for part in filename.split("/")
    )


def _installed_prefixes() -> tuple[str, ...]:
    global _prefixes
    if _prefixes is None:
        paths = {
            sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib", "platlib")
        }
        paths.update(getattr(site, "getsitepackages", list)())
        _prefixes = tuple(path for path in paths if path)
    return _prefixes


_prefixes: tuple[str, ...] | None = None


class _HelperCode:
    """One helper's compiled code (shared by every function object of that code), the code
    versions of it compiled for saved frames, and its parameters in binding order."""

    __slots__ = ("code", "saved_versions", "parameters")

    def __init__(self, code: CodeBlock | None, function: types.FunctionType) -> None:
        self.code: CodeBlock | None = code
        self.saved_versions: dict[str, CodeBlock] = {}
        self.parameters: tuple[str, ...] = _parameter_names(function.__code__)


def _parameter_names(code: types.CodeType) -> tuple[str, ...]:
    """The parameters of `code` in the order `CodeBlock.bind` returns them."""
    names = code.co_varnames
    positional = code.co_argcount
    keyword_only = code.co_kwonlyargcount
    ordered = list(names[:positional])
    index = positional + keyword_only
    if code.co_flags & _CO_VARARGS:
        ordered.append(names[index])
        index += 1
    ordered += names[positional : positional + keyword_only]
    if code.co_flags & _CO_VARKEYWORDS:
        ordered.append(names[index])
    return tuple(ordered)


def _compile(function: types.FunctionType) -> _HelperCode | None:
    """The compiled helper, or None when it cannot be compiled (it then runs plainly, and a
    durable operation reached in it names the reason)."""
    code = function.__code__
    compiled = _compiled.get(code)
    if compiled is not None:
        return compiled
    if code in compile_failures:
        return None
    from ..transform.pipeline import compile_function  # libcst: only where code compiles

    try:
        block = compile_function(function)
    except (DurableCompileError, NoSourceCodeException, TypeError, SyntaxError) as error:
        compile_failures[code] = str(error)
        logger.info(
            "helper %s runs plainly: it cannot be compiled: %s", function.__qualname__, error
        )
        return None
    compiled = _compiled[code] = _HelperCode(block, function)
    return compiled


class Helper:
    """A helper function as a frame's program: what `FunctionCall` needs of one."""

    __slots__ = ("function", "compiled", "code", "key", "rebinds", "saved_by_name")

    def __init__(self, function: types.FunctionType, compiled: _HelperCode) -> None:
        self.function: types.FunctionType = function
        self.compiled: _HelperCode = compiled
        self.code: CodeBlock | None = compiled.code
        self.key: str = f"{function.__module__}:{function.__qualname__}"
        #: The shared compiled function is bound to another function object's closure
        #: (or globals: the same code imported twice).
        self.rebinds: bool = function.__closure__ is not None or (
            compiled.code is not None
            and function.__globals__ is not compiled.code.function.__globals__
        )
        # A script's helper is pickled with the snapshot (`references` names it by the
        # module a worker imports the script as), not by its ``__main__`` name.
        self.saved_by_name: bool = findable(function) and function.__module__ != "__main__"

    @property
    def saved_as(self) -> types.FunctionType:
        return self.function

    @property
    def __wrapped__(self) -> types.FunctionType:
        return self.function

    def __repr__(self) -> str:
        return f"<durable helper {self.key}>"

    def code_for_saved_frame(
        self, record: FrameRecord, run: InstanceRun, code_versions: Mapping[str, CodeVersion]
    ) -> tuple[CodeBlock, int, dict[str, Any]]:
        return code_for_saved_frame(
            self.code,
            self.function,
            self.compiled.saved_versions,
            run.program,
            record,
            run,
            code_versions,
        )


def helper_for_saved(function: types.FunctionType) -> Helper:
    """The helper a saved frame names (its function, found by name or restored by value).
    Its code is compiled from the source as it is now (None when that fails);
    `code_for_saved_frame` compares the fingerprint with the saved one."""
    compiled = _compile(function)
    if compiled is None:
        compiled = _HelperCode(None, function)
    return Helper(function, compiled)


def helper_of(
    awaiting_module: str, coroutine: types.CoroutineType[Any, Any, Any]
) -> tuple[Helper, tuple[Any, ...]] | None:
    """(the helper, its arguments) when `coroutine` is a not yet started coroutine of a
    helper, else None. The coroutine is closed unstarted: a nested frame runs the compiled
    code with the arguments it was created with (`operations.HelperCall`)."""
    decided = _decisions.get(awaiting_module)
    if decided is None:
        decided = _decisions[awaiting_module] = ByCode()
    code = coroutine.cr_code
    function = None
    try:
        compiled = decided[code]
    except KeyError:
        function = function_of(coroutine)
        compiled = decided[code] = _decide(awaiting_module, function)
    if compiled is None or inspect.getcoroutinestate(coroutine) != inspect.CORO_CREATED:
        return None
    if function is None:
        function = function_of(coroutine)
    frame_locals = coroutine.cr_frame.f_locals
    arguments = tuple(frame_locals[name] for name in compiled.parameters)
    coroutine.close()
    return Helper(function, compiled), arguments


def _decide(awaiting_module: str, function: types.FunctionType | None) -> _HelperCode | None:
    if function is None or not is_users_code(function, awaiting_module):
        return None
    return _compile(function)


def program_for_saved(saved_as: Any) -> Any:
    """The program a saved frame names: a durable program by key, or a helper function."""
    if type(saved_as) is str:
        return program_for_key(saved_as)
    return helper_for_saved(saved_as)
