"""Pass 3, liveness: number the checkpoints and find the variables live at each one.

Input: the normalized body. Output: `Analysis` with a resume point (id, line, live names)
per checkpoint statement in source order, and the id range each statement contains. A
variable is saved at a checkpoint only if some path from there reads it before writing it.
Variables that nested functions capture are never listed: they live in cells that the frame
saves whole (see `CompileContext.captured`), so closures and the frame keep sharing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst

from ._names import RESERVED_PREFIX
from ._records import CompileContext, ResumePoint, Visitor, as_await_statement
from .normalize import statements_of

Span = tuple[int, int]


@dataclass
class Analysis:
    """The checkpoints of one function and where they sit."""

    #: Checkpoint statement -> its resume point id.
    ids: dict[cst.CSTNode, int] = field(default_factory=dict)
    #: Statement -> (lowest, highest) resume point id inside it; absent when it has none.
    spans: dict[cst.CSTNode, Span] = field(default_factory=dict)
    points: dict[int, ResumePoint] = field(default_factory=dict)

    def span_of(self, statements) -> Span | None:
        found = [self.spans[s] for s in statements if s in self.spans]
        if not found:
            return None
        return found[0][0], found[-1][1]


class _Loads(Visitor):
    """Names an expression or statement reads (over-approximated inside nested scopes)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def visit_Name(self, node: cst.Name) -> None:
        self.names.add(node.value)

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        self.walk(node.value)
        return False

    def visit_Arg(self, node: cst.Arg) -> bool:
        self.walk(node.value)
        return False

    def visit_ImportAlias(self, node: cst.ImportAlias) -> bool:
        return False

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        for part in (*node.decorators, node.params, node.body):
            self.walk(part)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        for part in (*node.decorators, *node.bases, *node.keywords, node.body):
            self.walk(part)
        return False


def _bound_names(target: cst.CSTNode) -> set[str]:
    """Names a plain assignment to `target` binds for certain."""
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, cst.Tuple | cst.List):
        names: set[str] = set()
        for element in target.elements:
            names |= _bound_names(element.value)
        return names
    if isinstance(target, cst.StarredElement):
        return _bound_names(target.value)
    return set()


def _target_reads(target: cst.CSTNode) -> list[cst.CSTNode]:
    """The parts of an assignment target that are read (`a[i] = v` reads `a` and `i`)."""
    if isinstance(target, cst.Name):
        return []
    if isinstance(target, cst.Tuple | cst.List):
        return [part for element in target.elements for part in _target_reads(element.value)]
    if isinstance(target, cst.StarredElement):
        return _target_reads(target.value)
    if isinstance(target, cst.Attribute):
        return [target.value]
    if isinstance(target, cst.Subscript):
        return [target.value, *target.slice]
    return [target]


class LivenessPass:
    """Numbers checkpoints and computes live variables (module docstring)."""

    def __init__(self, context: CompileContext) -> None:
        self.context = context
        self.analysis: Analysis = Analysis()
        self._live: dict[int, set[str]] = {}
        self._loads_cache: dict[cst.CSTNode, frozenset[str]] = {}
        self._next_id = 1

    def run(self, body: list[cst.BaseStatement]) -> Analysis:
        self._number(body)
        self._block(body, set(), None)
        in_cells = self.context.captured.keys()
        for node, point_id in self.analysis.ids.items():
            live = self._live.get(point_id, set()) - in_cells
            line = self.context.origins.get(node, self.context.first_line)
            self.analysis.points[point_id] = ResumePoint(point_id, line, tuple(sorted(live)))
        return self.analysis

    # -- numbering ----------------------------------------------------------------------
    def _number(self, statements) -> None:
        for statement in statements:
            first = self._next_id
            self._number_statement(statement)
            if self._next_id > first:
                self.analysis.spans[statement] = (first, self._next_id - 1)

    def _number_statement(self, statement: cst.CSTNode) -> None:
        if as_await_statement(statement) is not None:
            self.analysis.ids[statement] = self._next_id
            self._next_id += 1
        elif isinstance(statement, cst.If):
            self._number(statements_of(statement.body))
            if isinstance(statement.orelse, cst.If):
                self._number([statement.orelse])
            elif statement.orelse is not None:
                self._number(statements_of(statement.orelse.body))
        elif isinstance(statement, cst.Try) and statement in self.context.try_facts:
            self._number(statements_of(statement.body))
            for handler in statement.handlers:
                self._number(statements_of(handler.body))
            for part in (statement.orelse, statement.finalbody):
                if part is not None:
                    self._number(statements_of(part.body))
        elif isinstance(statement, cst.While) or (
            isinstance(statement, cst.For) and statement.asynchronous is None
        ):
            self._number(statements_of(statement.body))
            if statement.orelse is not None:
                self._number(statements_of(statement.orelse.body))

    # -- liveness -----------------------------------------------------------------------
    def _loads(self, node: cst.CSTNode | None) -> set[str]:
        if node is None:
            return set()
        names = self._loads_cache.get(node)
        if names is None:
            collector = _Loads()
            collector.walk(node)
            names = self._loads_cache[node] = frozenset(collector.names & self.context.local_names)
        return set(names)

    def _target_loads(self, target: cst.CSTNode) -> set[str]:
        names: set[str] = set()
        for part in _target_reads(target):
            names |= self._loads(part)
        return names

    def _block(self, statements, out: set[str], loop) -> set[str]:
        live = set(out)
        for statement in reversed(list(statements)):
            live = self._statement(statement, live, loop)
        return live

    def _statement(self, statement: cst.CSTNode, out: set[str], loop) -> set[str]:
        point_id = self.analysis.ids.get(statement)
        if point_id is not None:
            checkpoint = as_await_statement(statement)
            after = out - {checkpoint.target}
            self._live.setdefault(point_id, set()).update(after)
            return after | self._loads(checkpoint.operand)
        if isinstance(statement, cst.SimpleStatementLine):
            live = set(out)
            for small in reversed(statement.body):
                live = self._small(small, live, loop)
            return live
        if isinstance(statement, cst.If):
            body = self._block(statements_of(statement.body), out, loop)
            if isinstance(statement.orelse, cst.If):
                orelse = self._statement(statement.orelse, out, loop)
            elif statement.orelse is not None:
                orelse = self._block(statements_of(statement.orelse.body), out, loop)
            else:
                orelse = set(out)
            return self._loads(statement.test) | body | orelse
        if isinstance(statement, cst.While):
            return self._loop(statement, out, loop, self._loads(statement.test), set(), set())
        if isinstance(statement, cst.For) and statement.asynchronous is None:
            iterator = statement.iter
            carried = set()
            if isinstance(iterator, cst.Name) and iterator.value.startswith(RESERVED_PREFIX):
                carried = {iterator.value}
            head = self._loop(
                statement,
                out,
                loop,
                carried | self._target_loads(statement.target),
                _bound_names(statement.target),
                carried,
            )
            # Re-entering the loop reads its iterator, even when every path from the
            # checkpoint leaves the loop (break/return).
            self._force(statements_of(statement.body), carried)
            return head | self._loads(statement.iter)
        facts = self.context.try_facts.get(statement)
        if facts is not None:
            return self._try(statement, facts, out, loop)
        # try / with / match / async for / def / class: no checkpoint inside; be conservative.
        live = out | self._loads(statement)
        if loop is not None:
            live |= loop[0] | loop[1]
        if isinstance(statement, cst.FunctionDef | cst.ClassDef):
            live.discard(statement.name.value)
            live |= self._loads(statement) - {statement.name.value}
        return live

    def _try(self, statement: cst.Try, facts, out: set[str], loop) -> set[str]:
        """Any point of the body may jump to a handler or the finally: what they need is live
        throughout the body; a handler needs its exception and a finally its pending
        completion at every one of its own checkpoints, to be re-entered."""
        finally_in: set[str] = set()
        after = set(out)
        if statement.finalbody is not None:
            finally_out = out | (loop[0] | loop[1] if loop else set())
            finally_in = self._block(statements_of(statement.finalbody.body), finally_out, loop)
            after = finally_in
            # How control is leaving the try is needed wherever the try is resumed.
            pending = {facts.pending} - {None}
            self._force(statements_of(statement.finalbody.body), pending)
            self._force(statements_of(statement.body), pending)
            for handler in statement.handlers:
                self._force(statements_of(handler.body), pending)
            if statement.orelse is not None:
                self._force(statements_of(statement.orelse.body), pending)
        else_in = (
            self._block(statements_of(statement.orelse.body), after, loop)
            if statement.orelse is not None
            else after
        )
        handlers_in: set[str] = set()
        for handler, exception in zip(statement.handlers, facts.exceptions, strict=True):
            handler_body = statements_of(handler.body)
            handlers_in |= self._block(handler_body, after, loop) - {exception}
            self._force(handler_body, {exception} | finally_in)
        if statement.orelse is not None:
            self._force(statements_of(statement.orelse.body), finally_in)
        body = statements_of(statement.body)
        body_in = self._block(body, else_in, loop)
        self._force(body, handlers_in | finally_in)
        return body_in | handlers_in | finally_in

    def _force(self, statements, names: set[str]) -> None:
        """Make `names` live at every checkpoint inside `statements`."""
        span = self.analysis.span_of(statements)
        if names and span is not None:
            for point_id in range(span[0], span[1] + 1):
                self._live.setdefault(point_id, set()).update(names)

    def _loop(self, statement, out, loop, head_reads, bound, carried) -> set[str]:
        """Fixpoint at a loop head: reads of the test/target plus what body and else need."""
        orelse = (
            self._block(statements_of(statement.orelse.body), out, loop)
            if statement.orelse is not None
            else set(out)
        )
        head: set[str] = set()
        while True:
            body = self._block(statements_of(statement.body), head, (out, head))
            new_head = head_reads | (body - bound) | orelse | carried
            if new_head == head:
                return head
            head = new_head

    def _small(self, small: cst.BaseSmallStatement, out: set[str], loop) -> set[str]:
        loads = self._loads
        if isinstance(small, cst.Return):
            return loads(small.value)
        if isinstance(small, cst.Raise):
            return loads(small.exc) | loads(small.cause)
        if isinstance(small, cst.Break):
            return set(loop[0]) if loop else set()
        if isinstance(small, cst.Continue):
            return set(loop[1]) if loop else set()
        if isinstance(small, cst.Assign):
            live = set(out)
            reads = loads(small.value)
            for target in small.targets:
                live -= _bound_names(target.target)
                reads |= self._target_loads(target.target)
            return live | reads
        if isinstance(small, cst.AnnAssign):
            if small.value is None:
                return set(out)
            bound = _bound_names(small.target)
            return (out - bound) | loads(small.value) | self._target_loads(small.target)
        if isinstance(small, cst.Del):
            # `del x` reads x (it must be bound to be deleted), and x is dead after it.
            return set(out) | _bound_names(small.target) | self._target_loads(small.target)
        if isinstance(small, cst.Import | cst.ImportFrom):
            bound = set()
            if not isinstance(small.names, cst.ImportStar):
                for alias in small.names:
                    if alias.asname is not None:
                        bound |= _bound_names(alias.asname.name)
                    else:
                        bound.add(cst.Module([]).code_for_node(alias.name).split(".")[0])
            return out - bound
        return out | loads(small)
