"""Pass 1, analyze: parse one function, refuse what cannot be resumed, learn its scopes.

Input: the source text of one `async def` (decorators allowed). Output: the libcst
`FunctionDef`, every statement's line in the user's file (`context.origins`), the function's
local and captured names, and every diagnostic at once in `context.diagnostics`.
"""

from __future__ import annotations

import ast
import symtable
from typing import Any

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from ._lines import pair_statements
from ._names import RESERVED_PREFIX
from ._records import (
    CompileContext,
    Visitor,
    comprehension_clauses,
    contains_checkpoint,
    durable_operation,
    is_async_comprehension,
    is_resumable_item,
    is_wait_point,
)

#: Child scopes that always finish inside the statement that creates them.
_COMPREHENSION_SCOPES = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})


class AnalyzePass:
    """Parses and validates; see the module docstring for the forms in and out."""

    def __init__(self, context: CompileContext) -> None:
        self.context = context

    def run(self) -> cst.FunctionDef:
        context = self.context
        module = cst.parse_module(context.source)
        function = next((stmt for stmt in module.body if isinstance(stmt, cst.FunctionDef)), None)
        if function is None or function.asynchronous is None:
            raise TypeError(
                f"{context.qualname}: expected the source of an 'async def' function, "
                f"found none in {context.filename}"
            )
        context.qualname = context.qualname or function.name.value
        offset = context.first_line - 1
        tree = context.syntax_tree = ast.parse(context.source, filename=context.filename)
        for node, ast_node in pair_statements(module.body, tree.body):
            context.origins[node] = ast_node.lineno + offset
        positions: dict[Any, Any] = {}

        def where(node: cst.CSTNode) -> tuple[int, int]:
            # Exact positions are only needed for diagnostics, and cost more than a compile.
            if not positions:
                wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
                positions.update(wrapper.resolve(PositionProvider))
            start = positions[node].start
            return start.line + offset, start.column

        _Validator(context, where).walk(function.body)
        if not context.diagnostics:
            self._learn_scopes(function.name.value)
        return function

    def _learn_scopes(self, name: str) -> None:
        context = self.context
        table = symtable.symtable(context.source, context.filename, "exec")
        function_table = next(
            child
            for child in table.get_children()
            if child.get_name() == name and child.get_type() == "function"
        )
        for symbol in function_table.get_symbols():
            if symbol.is_local() or symbol.is_parameter():
                context.local_names.add(symbol.get_name())
        for child, free in _captures(function_table):
            if free in context.local_names:
                context.captured.setdefault(free, child.get_lineno() + context.first_line - 1)


def _reevaluable(node: cst.BaseExpression) -> bool:
    if isinstance(node, cst.Name):
        return True
    if isinstance(node, cst.Attribute):
        return _reevaluable(node.value)
    if isinstance(node, cst.Tuple):
        return all(_reevaluable(element.value) for element in node.elements)
    return False


def _free_names(table: symtable.SymbolTable) -> set[str]:
    names = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_free()}
    for child in table.get_children():
        names |= _free_names(child)
    return names


def _captures(table: symtable.SymbolTable):
    """(capturing scope, name) for every name of `table` a nested function or lambda reads
    from it. A comprehension finishes inside its statement, so only the functions and
    lambdas inside it (which may outlive it) count."""
    for child in table.get_children():
        if child.get_name() in _COMPREHENSION_SCOPES:
            for grandchild, name in _captures(child):
                yield grandchild, name
        else:
            for name in _free_names(child):
                yield child, name


class _Validator(Visitor):
    """Collects one diagnostic per unsupported construct; never stops at the first."""

    def __init__(self, context: CompileContext, where) -> None:
        self.context = context
        self.where = where
        #: Enclosing blocks that are not re-entered (None: a `with resumable(...)`, which is).
        self.native_block: list[tuple[str, cst.CSTNode] | None] = []
        self.function_depth = 0

    def _error(self, node: cst.CSTNode, code: str, message: str, hint: str) -> None:
        line, column = self.where(node)
        self.context.error(code, message, line, column, hint)

    # -- scopes -------------------------------------------------------------------------
    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        for decorator in node.decorators:
            self._refuse_await_in(decorator, "a decorator")
        self._refuse_await_in(node.params, "a default argument value")
        self.function_depth += 1
        return True

    def leave_FunctionDef(self, original_node: cst.FunctionDef) -> None:
        self.function_depth -= 1

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        self.function_depth += 1
        return True

    def leave_ClassDef(self, original_node: cst.ClassDef) -> None:
        self.function_depth -= 1

    # -- blocks that are not re-entered ---------------------------------------------------
    def _enter_native(self, node: cst.CSTNode, kind: str) -> None:
        self.native_block.append((kind, node))

    def _leave_native(self) -> None:
        self.native_block.pop()

    def visit_Try(self, node: cst.Try) -> None:
        for handler in node.handlers:
            if self.function_depth == 0 and contains_checkpoint(handler.body, self.context):
                if handler.type is not None and not _reevaluable(handler.type):
                    self._error(
                        handler.type,
                        "DUR105",
                        "the exception type of an 'except' clause with a checkpoint inside "
                        "must be a name, a dotted name or a tuple of them, so that resuming "
                        "matches the same clause",
                        "assign the exception type to a module-level name and use that",
                    )

    def visit_TryStar(self, node: cst.TryStar) -> None:
        parts = [node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody]
        has_checkpoint = any(
            part is not None and contains_checkpoint(part, self.context) for part in parts
        )
        if self.function_depth == 0 and has_checkpoint:
            self._error(
                node,
                "DUR108",
                "'try/except*' cannot contain a checkpoint (an await or a wait point)",
                "move the await out of the try/except* block",
            )
        self._enter_native(node, "try/except*")

    def leave_TryStar(self, original_node: cst.TryStar) -> None:
        self._leave_native()

    def visit_With(self, node: cst.With) -> None:
        kind = "async with" if node.asynchronous else "with"
        resumable = all(is_resumable_item(item) for item in node.items)
        if not resumable:
            self._enter_native(node, kind)
            return
        if self.function_depth == 0:
            # The manager is evaluated in the function and re-entered on resume.
            for item in node.items:
                self._refuse_await_in(item.item, f"the context manager of '{kind} resumable(...)'")
        self.native_block.append(None)

    def leave_With(self, original_node: cst.With) -> None:
        self._leave_native()

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> None:
        finder = _FirstAwait()
        finder.walk(node.elt)
        for clause in comprehension_clauses(node):
            for condition in clause.ifs:
                finder.walk(condition)
        if finder.node is not None or is_async_comprehension(node):
            self._error(
                node,
                "DUR112",
                "an asynchronous generator expression cannot be resumed",
                "build a list with a list comprehension (or a for loop) instead",
            )

    def visit_MatchCase(self, node: cst.MatchCase) -> None:
        if node.guard is not None:
            self._refuse_await_in(node.guard, "a 'case' guard")

    def visit_For(self, node: cst.For) -> None:
        if node.asynchronous is not None:
            self._enter_native(node, "async for")

    def leave_For(self, original_node: cst.For) -> None:
        if original_node.asynchronous is not None:
            self._leave_native()

    def visit_Await(self, node: cst.Await) -> None:
        native = [entry for entry in self.native_block if entry is not None]
        if self.function_depth or not native:
            return
        operation = durable_operation(node.expression, self.context)
        if operation is not None:
            self._refuse_in_native(node, native[-1], f"a durable operation ({operation}())")

    # -- statements ---------------------------------------------------------------------
    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        native = [entry for entry in self.native_block if entry is not None]
        if self.function_depth == 0 and is_wait_point(node, self.context) and native:
            self._refuse_in_native(node, native[-1], "a wait point")

    def _refuse_in_native(self, node: cst.CSTNode, native: tuple[Any, ...], what: str) -> None:
        kind, block = native
        line, _ = self.where(block)
        hint = f"move it out of the '{kind}' block"
        if kind.endswith("with"):
            hint += (
                ", or opt the context manager in to re-entry: "
                f"'{kind} durable.resumable(manager)' (see docs/guide.md)"
            )
        self._error(node, "DUR104", f"{what} inside '{kind}' (line {line}) cannot be resumed", hint)

    def visit_Global(self, node: cst.Global) -> None:
        if self.function_depth == 0:
            self._error(
                node,
                "DUR102",
                "'global' is not allowed in a durable function",
                "return the value instead, or keep shared state in a module-level object",
            )

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        if self.function_depth == 0:
            self._error(
                node,
                "DUR102",
                "'nonlocal' is not allowed in a durable function",
                "pass the value in as an argument and return the new value",
            )

    def visit_Yield(self, node: cst.Yield) -> None:
        if self.function_depth == 0:
            self._error(
                node,
                "DUR101",
                "'yield' makes a generator, which cannot be made durable",
                "collect the values in a list and return it",
            )

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self._refuse_await_in(target, "an assignment target")

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._refuse_await_in(node.target, "an assignment target")

    def visit_Del(self, node: cst.Del) -> None:
        self._refuse_await_in(node, "a 'del' statement")

    def visit_Assert(self, node: cst.Assert) -> None:
        if node.msg is not None:
            self._refuse_await_in(node.msg, "an assert message")

    def visit_Call(self, node: cst.Call) -> None:
        func = node.func
        name = func.value if isinstance(func, cst.Name) else None
        if name in {"locals", "eval", "exec"} or (name == "vars" and not node.args):
            self._error(
                node,
                "DUR103",
                f"'{name}()' reads or runs code against the function's frame, which is "
                "rebuilt on resume",
                "use the variables directly",
            )
        elif (isinstance(func, cst.Attribute) and func.attr.value == "_getframe") or (
            name == "_getframe"
        ):
            self._error(
                node,
                "DUR103",
                "'sys._getframe()' sees the compiled frame, not the function's",
                "pass what you need as arguments",
            )

    def visit_Name(self, node: cst.Name) -> None:
        if node.value.startswith(RESERVED_PREFIX):
            self._error(
                node,
                "DUR106",
                f"the name {node.value!r} uses the prefix {RESERVED_PREFIX!r}, reserved for "
                "the compiler",
                "rename it",
            )

    def _refuse_await_in(self, node: cst.CSTNode, what: str) -> None:
        finder = _FirstAwait()
        finder.walk(node)
        if finder.node is not None:
            self._error(
                finder.node,
                "DUR110",
                f"'await' in {what} is not supported",
                "await into a variable on the line before and use the variable",
            )


class _FirstAwait(Visitor):
    def __init__(self) -> None:
        self.node: cst.Await | None = None

    def visit_Await(self, node: cst.Await) -> bool:
        if self.node is None:
            self.node = node
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False
