"""Records shared by the compiler passes: the compile context, resume points, node facts.

Passes read and extend one `CompileContext`; nothing else is shared between them.
"""

from __future__ import annotations

import ast
import dataclasses
from dataclasses import dataclass, field

import libcst as cst

from .._errors import Diagnostic
from ._names import RESERVED_PREFIX

#: Bumped whenever emitted code changes shape; part of every fingerprint.
COMPILER_VERSION = "1"


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """A checkpoint statement: its number, its line in the user's file and what is live there."""

    id: int
    line: int
    live: tuple[str, ...]


@dataclass
class CompileContext:
    """What the passes know about the one function being compiled."""

    filename: str
    #: Line in the user's file of the first line of `source`.
    first_line: int
    source: str
    qualname: str
    #: Names that may be the wait-point exception (`raise <name>(...)`).
    wait_exception_names: frozenset[str] = frozenset({"PauseForEventException"})
    #: Module globals naming durable operations (`wait_for_event`, a step, a durable
    #: function, ...), and those naming the `durable` module itself (`durable.sleep`).
    operation_names: frozenset[str] = frozenset()
    durable_module_names: frozenset[str] = frozenset()
    #: `from __future__` compiler flags of the function's module, for the compiled code.
    future_flags: int = 0
    diagnostics: list[Diagnostic] = field(default_factory=list)
    #: Statement node -> line in the user's file; filled by every pass that creates statements.
    origins: dict[cst.CSTNode, int] = field(default_factory=dict)
    #: Names local to the function (parameters, assigned names, compiler temporaries).
    local_names: set[str] = field(default_factory=set)
    #: Names captured by nested functions or lambdas, with the line of the capturing scope.
    captured: dict[str, int] = field(default_factory=dict)
    #: Compiler temporaries -> what they stand for, for error messages.
    temp_descriptions: dict[str, str] = field(default_factory=dict)
    #: The source parsed by `ast` (statement lines, fingerprint); set by the analyze pass.
    syntax_tree: ast.Module | None = None
    #: Normalized `try` statements that hold checkpoints -> their facts.
    try_facts: dict[cst.CSTNode, TryFacts] = field(default_factory=dict)
    _temp_counter: int = 0
    _await_cache: dict[cst.CSTNode, bool] = field(default_factory=dict)
    _checkpoint_cache: dict[cst.CSTNode, bool] = field(default_factory=dict)

    def source_line(self, line: int) -> str:
        lines = self.source.splitlines()
        index = line - self.first_line
        return lines[index] if 0 <= index < len(lines) else ""

    def error(self, code: str, message: str, line: int, column: int, hint: str) -> None:
        self.diagnostics.append(
            Diagnostic(
                code=code,
                message=message,
                filename=self.filename,
                line=line,
                column=column,
                source_line=self.source_line(line),
                hint=hint,
            )
        )

    def new_temp(self, kind: str, description: str) -> str:
        self._temp_counter += 1
        name = f"{RESERVED_PREFIX}{kind}{self._temp_counter}"
        self.local_names.add(name)
        self.temp_descriptions[name] = description
        return name

    def has_await(self, node: cst.CSTNode) -> bool:
        """True when `node` holds an `await` of this function (not of a nested scope, a
        generator expression or an `async for` comprehension); cached per node."""
        cached = self._await_cache.get(node)
        if cached is None:
            # One pass records the answer for `node` and every node inside it.
            _AwaitIndex(self._await_cache).walk(node)
            cached = self._await_cache[node]
        return cached

    def describe(self, name: str) -> str:
        return self.temp_descriptions.get(name, f"variable {name!r}")


@dataclass
class TryFacts:
    """What normalize decided for a `try` that holds checkpoints, for liveness and lower."""

    #: One temporary per `except` clause, bound to the exception it handles.
    exceptions: list[str]
    #: Records how control left the try while its `finally` runs; None without a checkpoint
    #: in the `finally`.
    pending: str | None = None
    #: 'break' / 'continue' when one of them leaves the try for an enclosing loop.
    escapes: set[str] = field(default_factory=set)
    #: Set when the try is a desugared `with resumable(...)`: re-enter its manager on resume.
    reenter: Reentry | None = None


@dataclass(frozen=True, slots=True)
class Reentry:
    """The context manager of a desugared `with` and where its `__enter__` value goes."""

    manager: str
    value: str
    asynchronous: bool
    #: The `as` target, bound again to the re-entered value.
    target: cst.BaseAssignTargetExpression | None = None


@dataclass(frozen=True, slots=True)
class AwaitStatement:
    """The only place a checkpoint may sit after normalize: `[target =] await operand`."""

    target: str | None
    operand: cst.BaseExpression


def as_await_statement(statement: cst.CSTNode) -> AwaitStatement | None:
    """Recognise the normalized checkpoint forms; `None` for anything else."""
    if not isinstance(statement, cst.SimpleStatementLine) or len(statement.body) != 1:
        return None
    small = statement.body[0]
    if isinstance(small, cst.Expr) and isinstance(small.value, cst.Await):
        return AwaitStatement(None, small.value.expression)
    if (
        isinstance(small, cst.Assign)
        and isinstance(small.value, cst.Await)
        and len(small.targets) == 1
        and isinstance(small.targets[0].target, cst.Name)
    ):
        return AwaitStatement(small.targets[0].target.value, small.value.expression)
    return None


class Visitor(cst.CSTVisitor):
    """A `CSTVisitor` with the same `visit_<Node>`/`leave_<Node>` dispatch, minus the
    per-attribute hooks (none of ours use them) and the per-node name lookups; walks cost a
    third of libcst's default."""

    #: Per visitor class: node type -> its visit_/leave_ method (or None).
    _visits: dict[type, object]
    _leaves: dict[type, object]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._visits = {}
        cls._leaves = {}

    def on_visit(self, node: cst.CSTNode) -> bool:
        kind = type(node)
        method = self._visits.get(kind, _MISSING)
        if method is _MISSING:
            method = self._visits[kind] = getattr(type(self), "visit_" + kind.__name__, None)
        return method is None or method(self, node) is not False

    def on_leave(self, original_node: cst.CSTNode) -> None:
        kind = type(original_node)
        method = self._leaves.get(kind, _MISSING)
        if method is _MISSING:
            method = self._leaves[kind] = getattr(type(self), "leave_" + kind.__name__, None)
        if method is not None:
            method(self, original_node)

    def on_visit_attribute(self, node: cst.CSTNode, attribute: str) -> None:
        pass

    def on_leave_attribute(self, original_node: cst.CSTNode, attribute: str) -> None:
        pass

    def walk(self, node: cst.CSTNode) -> None:
        """Visit `node` and its subtree. Unlike `node.visit(self)`, rebuilds no nodes
        (libcst reconstructs every node it visits, even for a read-only visitor)."""
        if self.on_visit(node):
            for child in _children(node):
                self.walk(child)
        self.on_leave(node)


def _children(node: cst.CSTNode) -> list[cst.CSTNode]:
    """The child nodes of `node` (whitespace included), without libcst's rebuilding walk."""
    names = _CHILD_FIELDS.get(type(node))
    if names is None:
        names = _CHILD_FIELDS[type(node)] = [f.name for f in dataclasses.fields(node)]
    children: list[cst.CSTNode] = []
    for name in names:
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            children.append(value)
        elif isinstance(value, list | tuple):
            children.extend(item for item in value if isinstance(item, cst.CSTNode))
    return children


_CHILD_FIELDS: dict[type, list[str]] = {}


_MISSING = object()


class _CheckpointFinder(Visitor):
    """Finds a checkpoint: an await or a wait point of this function, in a position that is
    re-entered. Awaits in nested scopes belong to them (`_is_await_boundary`); `try/except*`,
    `async for` and `with` blocks without `resumable(...)` run natively; a `match` re-enters
    case bodies but not guards."""

    def __init__(self, context: CompileContext) -> None:
        self.context = context
        self.found = False

    def on_visit(self, node: cst.CSTNode) -> bool:
        if self.found:
            return False
        if isinstance(node, cst.Await):
            self.found = True
            return False
        if _is_await_boundary(node):
            for part in _enclosing_parts(node):
                part.visit(self)
            return False
        return super().on_visit(node)

    def visit_Raise(self, node: cst.Raise) -> bool:
        if _is_wait_raise(node, self.context):
            self.found = True
        return False

    def visit_TryStar(self, node: cst.TryStar) -> bool:
        return False

    def visit_With(self, node: cst.With) -> bool:
        return all(is_resumable_item(item) for item in node.items)

    def visit_Match(self, node: cst.Match) -> bool:
        self.walk(node.subject)
        for case in node.cases:
            self.walk(case.body)
        return False

    def visit_For(self, node: cst.For) -> bool:
        return node.asynchronous is None


def is_resumable_item(item: cst.WithItem) -> bool:
    """`resumable(manager)` or `durable.resumable(manager)`: opted in to re-entry."""
    call = item.item
    if not isinstance(call, cst.Call) or len(call.args) != 1:
        return False
    func = call.func
    name = func.value if isinstance(func, cst.Name) else getattr(func, "attr", None)
    return getattr(name, "value", name) == "resumable"


class _AwaitIndex(Visitor):
    """Records `CompileContext.has_await` for every node of a tree in one walk."""

    def __init__(self, cache: dict[cst.CSTNode, bool]) -> None:
        self.cache = cache
        self.found = [False]

    def on_visit(self, node: cst.CSTNode) -> bool:
        self.found.append(isinstance(node, cst.Await))
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        found = self.found.pop()
        self.cache[original_node] = found
        if found and not _is_await_boundary(original_node):
            self.found[-1] = True
        elif found and any(self.cache.get(part) for part in _enclosing_parts(original_node)):
            self.found[-1] = True


def _is_await_boundary(node: cst.CSTNode) -> bool:
    """Nodes whose awaits do not count for the code around them."""
    if isinstance(node, cst.FunctionDef | cst.Lambda | cst.ClassDef | cst.GeneratorExp):
        return True
    if isinstance(node, cst.ListComp | cst.SetComp | cst.DictComp):
        return is_async_comprehension(node)
    return False


def _enclosing_parts(boundary: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The parts of an await boundary that the enclosing code evaluates itself: a generator
    expression's first iterable (its awaits are the function's checkpoints)."""
    if isinstance(boundary, cst.GeneratorExp):
        return (boundary.for_in.iter,)
    return ()


def comprehension_clauses(node: cst.BaseComp) -> list[cst.CompFor]:
    clauses = []
    clause: cst.CompFor | None = node.for_in
    while clause is not None:
        clauses.append(clause)
        clause = clause.inner_for_in
    return clauses


def is_async_comprehension(node: cst.BaseComp) -> bool:
    """`async for` comprehensions run natively (they are not lowered to loops)."""
    return any(clause.asynchronous is not None for clause in comprehension_clauses(node))


#: What the `durable` module calls its operations (for ``durable.<name>(...)``).
DURABLE_OPERATIONS = frozenset(
    {"wait_for_event", "sleep", "durable_execute", "durable_execute_async", "first"}
)


def durable_operation(expression: cst.BaseExpression, context: CompileContext) -> str | None:
    """The name of the durable operation `expression` calls, if it calls one by a module
    global (`wait_for_event(...)`, `charge(...)` of a step, `durable.sleep(...)`)."""
    if not isinstance(expression, cst.Call):
        return None
    func = expression.func
    if isinstance(func, cst.Name) and func.value in context.operation_names:
        return func.value
    if (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value in context.durable_module_names
        and func.attr.value in DURABLE_OPERATIONS
    ):
        return f"{func.value.value}.{func.attr.value}"
    return None


def is_wait_point(statement: cst.CSTNode, context: CompileContext) -> bool:
    """`raise PauseForEventException(...)` as a statement line."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    return any(_is_wait_raise(small, context) for small in statement.body)


def _is_wait_raise(small: cst.CSTNode, context: CompileContext) -> bool:
    if not isinstance(small, cst.Raise) or not isinstance(small.exc, cst.Call):
        return False
    func = small.exc.func
    if isinstance(func, cst.Name):
        return func.value in context.wait_exception_names
    if isinstance(func, cst.Attribute):
        return func.attr.value == "PauseForEventException"
    return False


def is_wait_raise(small: cst.CSTNode, context: CompileContext) -> bool:
    return _is_wait_raise(small, context)


def contains_checkpoint(node: cst.CSTNode, context: CompileContext) -> bool:
    """True when `node` holds an await or a wait point of this function. Cached per node."""
    cached = context._checkpoint_cache.get(node)
    if cached is None:
        finder = _CheckpointFinder(context)
        finder.walk(node)
        cached = context._checkpoint_cache[node] = finder.found
    return cached
