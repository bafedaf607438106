"""The compiler pipeline: analyze -> normalize -> liveness -> lower -> emit, and its cache.

`compile_function(fn)` turns one `async def` into a `CodeBlock`: the compiled resumable
function, its resume-point table, its fingerprint and a binder for its arguments.
"""

from __future__ import annotations
import __future__

import ast
import copy
import functools
import gc
import hashlib
import inspect
import operator
import sys
import textwrap
import tokenize
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .._errors import (
    Diagnostic,
    DurableCompileError,
    IncompatibleStateError,
    NoSourceCodeException,
    PauseForEventException,
)
from ._mangle import mangle_private_names
from ._records import COMPILER_VERSION, CompileContext, ResumePoint
from .analyze import AnalyzePass
from .emit import EmitPass, Emitted
from .liveness import LivenessPass
from .lower import LowerPass
from .normalize import NormalizePass, spell_out_super


@dataclass(frozen=True)
class CodeBlock:
    """One compiled durable function: its resumable code and what identifies that code."""

    module: str
    qualname: str
    filename: str
    first_line: int
    source: str
    resume_points: Mapping[int, ResumePoint]
    fingerprint: str
    #: `async def f(frame)`: the resumable function, with the original globals and closure.
    function: Callable[..., Any] = field(repr=False, compare=False)
    #: Takes the original arguments and returns them bound, in parameter order.
    bind: Callable[..., tuple[Any, ...]] = field(repr=False, compare=False)
    #: Compiler temporaries -> what they stand for, for error messages.
    temp_descriptions: Mapping[str, str] = field(repr=False, compare=False, default_factory=dict)
    #: Module-level names the function reads; snapshots keep their objects by reference.
    global_names: frozenset[str] = field(repr=False, compare=False, default=frozenset())
    #: How to compile this exact code again (saved with the instances that use it).
    version: CodeVersion | None = field(repr=False, compare=False, default=None)
    emitted: Emitted | None = field(repr=False, compare=False, default=None)
    #: Variables nested functions capture: cells each frame owns and its snapshot keeps.
    cell_names: tuple[str, ...] = field(repr=False, compare=False, default=())
    #: Per free variable of the compiled code: (True, i) the i-th cell of the original
    #: function's closure, (False, i) the frame's i-th own cell.
    closure_plan: tuple[tuple[bool, int], ...] = field(repr=False, compare=False, default=())

    def instantiate(
        self,
        original: Callable[..., Any],
        own_cells: tuple[types.CellType, ...],
    ) -> Callable[..., Any]:
        """The compiled function in the globals and closure of `original` (a function of
        this code: the one compiled, or another made by the same `def`), with one frame's
        `own_cells`."""
        template = self.function
        cells = _closure(self.closure_plan, original.__closure__, own_cells)
        return types.FunctionType(
            template.__code__, original.__globals__, template.__name__, None, cells
        )

    @property
    def compiled_source(self) -> str:
        """The compiled, resumable function as readable source."""
        return self.emitted.source

    def resume_point_at(self, line: int) -> int:
        """The checkpoint on `line` of the user's file (for migrations)."""
        for point in self.resume_points.values():
            if point.line == line:
                return point.id
        lines = sorted(point.line for point in self.resume_points.values())
        raise ValueError(
            f"{self.qualname} has no checkpoint on line {line}; its checkpoints are on lines {lines}"
        )

    def line_of(self, resume_point: int) -> int:
        point = self.resume_points.get(resume_point)
        return point.line if point is not None else self.first_line


def _closure(
    plan, closure: tuple[Any, ...] | None, own_cells: tuple[Any, ...] | None
) -> tuple[Any, ...]:
    """The cells of a compiled function's closure by its `CodeBlock.closure_plan` (an own
    cell made fresh when `own_cells` is None)."""
    return tuple(
        closure[index] if outer else (own_cells[index] if own_cells else types.CellType())
        for outer, index in plan
    )


@dataclass(frozen=True)
class _CompiledShape:
    emitted: Emitted
    points: Mapping[int, ResumePoint]
    fingerprint: str
    temp_descriptions: Mapping[str, str]


_cache: dict[tuple[Any, ...], _CompiledShape] = {}

#: Every `from __future__` feature's compiler flag (of those a code object's flags carry).
FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, name).compiler_flag for name in __future__.all_feature_names)
)


def read_source(fn: Callable[..., Any]) -> tuple[str, str, int]:
    """(dedented source, file name, first line) of `fn`, or `NoSourceCodeException`."""
    qualname = getattr(fn, "__qualname__", repr(fn))
    try:
        # The code's own source: `getsourcelines(fn)` would follow `__wrapped__` and read
        # the function a decorator wraps instead of the one given.
        lines, first_line = inspect.getsourcelines(fn.__code__)
    except (OSError, TypeError) as error:
        raise NoSourceCodeException(
            f"cannot read the source code of {qualname!r} ({error}); make_durable compiles "
            "a function from its source, so define it with 'async def' in a .py file "
            "(functions built by exec() or typed at an interactive prompt have none)"
        ) from None
    return dedent_source(lines), fn.__code__.co_filename, max(first_line, 1)


def dedent_source(lines: list[str]) -> str:
    """The source `lines` of a function moved to column 0 by the indentation of its first
    line. Lines inside a multi-line string are kept as they are: `textwrap.dedent` would
    take its common indentation out of a string's text too, or, for a string line at column
    0, take out nothing and leave source that does not parse."""
    first = lines[0] if lines else ""
    indent = first[: len(first) - len(first.lstrip(" \t"))]
    if not indent:
        return "".join(lines)
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(iter(lines).__next__):
            if token.start[0] < token.end[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        return textwrap.dedent("".join(lines))
    moved = []
    for number, line in enumerate(lines, 1):
        if number in inside:
            moved.append(line)
        elif line.startswith(indent):
            moved.append(line[len(indent) :])
        else:  # a blank line, or a comment or bracketed line left of the function's indent
            moved.append(line.lstrip(" \t"))
    return "".join(moved)


def _operation_names(fn: Callable[..., Any]) -> tuple[frozenset[str], frozenset[str]]:
    """The module globals of `fn` that name durable operations (marked
    ``__durable_operation__``: the runtime's operations, steps, durable functions), and those
    that name the `durable` package itself."""
    operations, modules = set(), set()
    for name, value in fn.__globals__.items():
        if isinstance(value, types.ModuleType):
            if value.__name__ == "durable":
                modules.add(name)
        elif getattr(value, "__durable_operation__", False) is True:
            operations.add(name)
    return frozenset(operations), frozenset(modules)


def _wait_names(fn: Callable[..., Any]) -> frozenset[str]:
    names = {"PauseForEventException"}
    names |= {name for name, value in fn.__globals__.items() if value is PauseForEventException}
    return frozenset(names)


def compile_source(
    source: str,
    *,
    filename: str = "<durable>",
    first_line: int = 1,
    qualname: str | None = None,
    wait_names: frozenset[str] = frozenset({"PauseForEventException"}),
    free_names: tuple[str, ...] = (),
    operation_names: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset()),
    future_flags: int = 0,
) -> _CompiledShape:
    """Run every pass over the source of one async function. Cached by its inputs."""
    key = (
        source,
        filename,
        first_line,
        qualname,
        wait_names,
        free_names,
        operation_names,
        future_flags,
    )
    cached = _cache.get(key)
    if cached is not None:
        return cached
    # The passes allocate tens of thousands of short-lived nodes and no cycles worth
    # collecting: pausing the cyclic collector meanwhile saves a sixth of the time.
    collecting = gc.isenabled()
    gc.disable()
    try:
        shape = _run_passes(*key)  # the key is the passes' inputs, in their order
    except (DurableCompileError, NoSourceCodeException):
        raise
    except Exception as error:
        raise _internal_error(error, source, filename, first_line, qualname) from error
    finally:
        if collecting:
            gc.enable()
    _cache[key] = shape
    return shape


def _run_passes(
    source, filename, first_line, qualname, wait_names, free_names, operation_names, future_flags
) -> _CompiledShape:
    source = mangle_private_names(source, qualname)
    context = CompileContext(
        filename=filename,
        first_line=first_line,
        source=source,
        qualname=qualname or "",
        wait_exception_names=wait_names,
        operation_names=operation_names[0],
        durable_module_names=operation_names[1],
        future_flags=future_flags,
    )
    function = AnalyzePass(context).run()
    _raise_diagnostics(context)
    function = spell_out_super(function, free_names, context)
    body = NormalizePass(context).run(function.body)
    analysis = LivenessPass(context).run(body)
    _raise_diagnostics(context)
    lowered = LowerPass(context, analysis).run(function, body)
    emitted = EmitPass(context).run(lowered, function, free_names)
    shape = _CompiledShape(
        emitted=emitted,
        points=dict(analysis.points),
        fingerprint=fingerprint(context.syntax_tree, function.name.value, analysis.points),
        temp_descriptions=dict(context.temp_descriptions),
    )
    return shape


def _internal_error(
    error: Exception, source: str, filename: str, first_line: int, qualname: str | None
) -> DurableCompileError:
    """A fault of the compiler itself, said as such: where, what, and that it is durable's."""
    line = source.splitlines()[0] if source else ""
    return DurableCompileError(
        qualname or "<function>",
        [
            Diagnostic(
                "DUR000",
                f"internal error of durable's compiler ({type(error).__name__}: {error})",
                filename,
                first_line,
                0,
                line,
                "this is a bug in durable, not in your code: please report it with this "
                "function; meanwhile, rewriting the construct the error names may avoid it",
            )
        ],
    )


def _raise_diagnostics(context: CompileContext) -> None:
    if context.diagnostics:
        ordered = sorted(context.diagnostics, key=lambda d: (d.line, d.column, d.code))
        raise DurableCompileError(context.qualname, ordered)


def fingerprint(tree: ast.Module, name: str, points: Mapping[int, ResumePoint]) -> str:
    """Identity of compiled code: compiler, Python minor version, AST (without positions or
    decorators), resume-point table."""
    function = next(
        node for node in tree.body if isinstance(node, ast.AsyncFunctionDef) and node.name == name
    )
    function = copy.copy(function)
    function.decorator_list = []
    digest = hashlib.sha256()
    digest.update(f"durable-compiler:{COMPILER_VERSION}\n".encode())
    digest.update(f"python:{sys.version_info[0]}.{sys.version_info[1]}\n".encode())
    digest.update(ast.dump(function, include_attributes=False).encode())
    for point_id in sorted(points):
        point = points[point_id]
        digest.update(f"\n{point_id}:{','.join(point.live)}".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class CodeVersion:
    """What is needed to compile one version of a function again: kept with its instances,
    so an instance can resume on the code it was suspended in after the source changed."""

    module: str
    qualname: str
    filename: str
    first_line: int
    source: str
    wait_names: frozenset[str]
    free_names: tuple[str, ...]
    fingerprint: str
    #: The `from __future__` flags of the function's module (`annotations`), which the
    #: compiled code is compiled with too. A default, for versions saved before it.
    future_flags: int = 0


#: id(code object) -> (the code object, its source): reading source (inspect tokenizes the
#: file) costs more than a cached compile. By identity, not equality: CPython drops code
#: after a `raise`, so two versions of a function can have equal code objects.
_sources: dict[int, tuple[types.CodeType, tuple[str, str, int]]] = {}


def compile_function(fn: Callable[..., Any]) -> CodeBlock:
    """Compile `fn` (an ``async def``) into its resumable `CodeBlock`."""
    code = fn.__code__
    cached = _sources.get(id(code))
    if cached is None or cached[0] is not code:
        cached = _sources[id(code)] = (code, read_source(fn))
    source, filename, first_line = cached[1]
    version = CodeVersion(
        module=fn.__module__,
        qualname=fn.__qualname__,
        filename=filename,
        first_line=first_line,
        source=source,
        wait_names=_wait_names(fn),
        free_names=fn.__code__.co_freevars,
        fingerprint="",
        future_flags=fn.__code__.co_flags & FUTURE_FLAGS,
    )
    return compile_version(version, fn)


def compile_version(version: CodeVersion, fn: Callable[..., Any]) -> CodeBlock:
    """Compile `version` into a function that lives in `fn`'s module and closure.

    For the current version `fn` is the function itself; for a saved older version it is
    the current function of that name, whose globals and closure cells the old code reads.
    """
    shape = compile_source(
        version.source,
        filename=version.filename,
        first_line=version.first_line,
        qualname=version.qualname,
        wait_names=version.wait_names,
        free_names=version.free_names,
        operation_names=_operation_names(fn),
        future_flags=version.future_flags,  # 0 for versions saved before (class default)
    )
    compiled_code = shape.emitted.code
    own_names = shape.emitted.cell_names
    outer_names = fn.__code__.co_freevars
    plan = []
    missing = []
    for name in compiled_code.co_freevars:
        if name in own_names:
            plan.append((False, own_names.index(name)))
        elif name in outer_names:
            plan.append((True, outer_names.index(name)))
        else:
            missing.append(name)
    if missing:
        raise IncompatibleStateError(
            f"{version.qualname}: the saved code version {shape.fingerprint[:16]} reads the "
            f"enclosing variables {missing}, which the current function no longer has"
        )
    function = types.FunctionType(
        compiled_code, fn.__globals__, fn.__name__, None, _closure(plan, fn.__closure__, None)
    )
    function.__qualname__ = version.qualname
    function.__module__ = version.module
    function.__doc__ = fn.__doc__
    binder = types.FunctionType(shape.emitted.binder_code, {"__builtins__": __builtins__})
    binder.__defaults__ = fn.__defaults__
    binder.__kwdefaults__ = fn.__kwdefaults__
    binder.__qualname__ = version.qualname
    return CodeBlock(
        module=version.module,
        qualname=version.qualname,
        filename=version.filename,
        first_line=version.first_line,
        source=version.source,
        resume_points=shape.points,
        fingerprint=shape.fingerprint,
        function=function,
        bind=binder,
        temp_descriptions=shape.temp_descriptions,
        global_names=frozenset(_names_read(compiled_code)),
        version=replace(version, fingerprint=shape.fingerprint),
        emitted=shape.emitted,
        cell_names=own_names,
        closure_plan=tuple(plan),
    )


def _names_read(code: types.CodeType) -> set[str]:
    """The names `code` and the code nested in it may read as globals: every name they use
    (attributes too, which costs nothing: a module global found under an attribute's name is
    only kept as a reference), without disassembling the code."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            names |= _names_read(constant)
    return names
