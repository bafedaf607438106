"""Pass 2, normalize: move every checkpoint to statement level, keeping evaluation order.

Input: the analyzed function body. Output: statements where each `await` of a re-enterable
position is exactly `await E` or `name = await E` with no await inside `E`, and each
`raise PauseForEventException(args)` is `await _durable_pause(args)`. Everything Python
evaluates before an await is first stored in a temporary; `and`/`or`/`x if c else y` and
comparison chains become `if` statements so they still short-circuit; a `for` whose body
holds a checkpoint iterates a stored iterator; a `while` with an await in its test becomes
`while True` with the test inside. Example::

    total += await price(item)      ->    _durable_t1 = total
                                          _durable_t2 = await price(item)
                                          _durable_t1 += _durable_t2
                                          total = _durable_t1

`try`, `with`, `match`, `async for` and nested scopes are left as they are: they run between
checkpoints (the analyze pass refused wait points inside them).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import libcst as cst

from ._names import FRAME, PAUSE, RESERVED_PREFIX
from ._records import (
    CompileContext,
    Reentry,
    TryFacts,
    Visitor,
    comprehension_clauses,
    contains_checkpoint,
    is_wait_raise,
)

_LITERALS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.Ellipsis)


def statements_of(suite: cst.BaseSuite) -> list[cst.BaseStatement]:
    """The statements of a block, a one-line suite split into statement lines."""
    if isinstance(suite, cst.IndentedBlock):
        return list(suite.body)
    return [cst.SimpleStatementLine(body=[small]) for small in suite.body]


def block(statements: Sequence[cst.BaseStatement]) -> cst.IndentedBlock:
    return cst.IndentedBlock(body=list(statements) or [cst.SimpleStatementLine([cst.Pass()])])


def assign(name: str, value: cst.BaseExpression) -> cst.Assign:
    return cst.Assign(targets=[cst.AssignTarget(cst.Name(name))], value=value)


@dataclass
class _FinallyScope:
    """A `try` whose `finally` holds a checkpoint, while its body is being normalized."""

    facts: TryFacts
    #: Loop depth at the `try`: a break/continue at this depth or less leaves the try.
    loop_depth: int


class NormalizePass:
    """Rewrites a function body into statement-level checkpoints (module docstring)."""

    def __init__(self, context: CompileContext) -> None:
        self.context = context
        self._loop_depth = 0
        self._finally_scopes: list[_FinallyScope] = []
        #: Every pending-completion variable created so far.
        self._pending_names: set[str] = set()
        #: Desugared `with` statements (as built, before normalizing) -> their re-entry.
        self._reentries: dict[cst.Try, Reentry] = {}

    def run(self, body: cst.BaseSuite) -> list[cst.BaseStatement]:
        return self.block(statements_of(body), self.context.first_line)

    # -- statements ---------------------------------------------------------------------
    def block(self, statements: Sequence[cst.BaseStatement], line: int) -> list[Any]:
        result: list[cst.BaseStatement] = []
        for statement in statements:
            result.extend(self.statement(statement, self.context.origins.get(statement, line)))
        return result

    def _line(self, small: cst.BaseSmallStatement | cst.BaseStatement, line: int):
        """Wrap a small statement in its own line, remembering its line in the user's file."""
        if isinstance(small, cst.BaseSmallStatement):
            small = small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            statement: cst.BaseStatement = cst.SimpleStatementLine(body=[small])
        else:
            statement = small
        self.context.origins[statement] = line
        return statement

    def statement(self, statement: cst.BaseStatement, line: int) -> list[Any]:
        if isinstance(statement, cst.SimpleStatementLine):
            result = []
            for small in statement.body:
                result.extend(self.small(small, self.context.origins.get(small, line)))
            return result
        if isinstance(statement, cst.If):
            return self.if_statement(statement, line)
        if isinstance(statement, cst.While):
            return self.while_statement(statement, line)
        if isinstance(statement, cst.For) and statement.asynchronous is None:
            return self.for_statement(statement, line)
        if isinstance(statement, cst.Try) and self._has_checkpoint(statement):
            return self.try_statement(statement, line)
        if isinstance(statement, cst.Match) and self._has_checkpoint(statement):
            return self.match_statement(statement, line)
        if isinstance(statement, cst.With) and self._has_checkpoint(statement):
            return self.with_statement(statement, line)
        return [self._line(self._record_completions(statement), line)]

    def small(self, small: cst.BaseSmallStatement, line: int) -> list[Any]:
        has_await = self.context.has_await
        if is_wait_raise(small, self.context):
            call = small.exc
            hoisted, arguments = self.arguments(call.args, line)
            pause = cst.Call(func=cst.Name(PAUSE), args=arguments)
            return hoisted + [self._line(cst.Expr(cst.Await(pause)), line)]
        if isinstance(small, cst.Return | cst.Break | cst.Continue) and self._finally_scopes:
            return self.leave_try(small, line)
        if not has_await(small):
            return [self._line(small, line)]
        if isinstance(small, cst.Expr):
            return self.checkpoint(None, small.value, line)
        if isinstance(small, cst.Assign):
            targets = small.targets
            if len(targets) == 1 and isinstance(targets[0].target, cst.Name):
                return self.checkpoint(targets[0].target.value, small.value, line)
            hoisted, value = self.expression(small.value, line)
            return hoisted + [self._line(small.with_changes(value=value), line)]
        if isinstance(small, cst.AnnAssign):
            hoisted, value = self.expression(small.value, line)
            return hoisted + [self._line(small.with_changes(value=value), line)]
        if isinstance(small, cst.AugAssign):
            return self.augmented(small, line)
        if isinstance(small, cst.Return):
            hoisted, value = self.expression(small.value, line)
            return hoisted + [self._line(small.with_changes(value=value), line)]
        if isinstance(small, cst.Raise):
            hoisted, (exc, cause) = self.sequence([small.exc, small.cause], line)
            return hoisted + [self._line(small.with_changes(exc=exc, cause=cause), line)]
        if isinstance(small, cst.Assert):
            hoisted, test = self.expression(small.test, line)
            return hoisted + [self._line(small.with_changes(test=test), line)]
        raise AssertionError(f"normalize: unexpected await in {type(small).__name__}")

    def checkpoint(self, target: str | None, value: cst.BaseExpression, line: int) -> list[Any]:
        """`[target =] value` where value holds an await: end in a checkpoint statement."""
        if isinstance(value, cst.Await):
            hoisted, operand = self.expression(value.expression, line)
            awaited = cst.Await(operand)
            small = cst.Expr(awaited) if target is None else assign(target, awaited)
            return hoisted + [self._line(small, line)]
        hoisted, value = self.expression(value, line)
        if target is not None:
            return hoisted + [self._line(assign(target, value), line)]
        if isinstance(value, cst.Name) and value.value.startswith(RESERVED_PREFIX):
            return hoisted
        return hoisted + [self._line(cst.Expr(value), line)]

    def augmented(self, small: cst.AugAssign, line: int) -> list[Any]:
        """`t op= await v`: read the target before the await, as CPython does."""
        temp = self.context.new_temp
        target = small.target
        hoisted: list[Any] = []
        if isinstance(target, cst.Name):
            store: cst.BaseAssignTargetExpression = target
            read: cst.BaseExpression = target.deep_clone()
        elif isinstance(target, cst.Attribute):
            owner = temp("t", "a temporary")
            hoisted.append(self._line(assign(owner, target.value), line))
            store = target.with_changes(value=cst.Name(owner))
            read = store.deep_clone()
        elif isinstance(target, cst.Subscript):
            owner = temp("t", "a temporary")
            hoisted.append(self._line(assign(owner, target.value), line))
            keys = []
            for key in _slice_values(target.slice):
                more, key = self.freeze(key, line) if key is not None else ([], None)
                hoisted += more
                keys.append(key)
            store = target.with_changes(
                value=cst.Name(owner), slice=_rebuild_slice(target.slice, keys)
            )
            read = store.deep_clone()
        else:
            raise AssertionError(f"normalize: augmented target {type(target).__name__}")
        old = temp("t", "a temporary")
        hoisted.append(self._line(assign(old, read), line))
        more, value = self.expression(small.value, line)
        hoisted += more
        hoisted.append(self._line(cst.AugAssign(cst.Name(old), small.operator, value), line))
        hoisted.append(self._line(cst.Assign([cst.AssignTarget(store)], cst.Name(old)), line))
        return hoisted

    def if_statement(self, node: cst.If, line: int) -> list[Any]:
        hoisted, test = self.expression(node.test, line)
        body = block(self.block(statements_of(node.body), line))
        orelse = node.orelse
        if isinstance(orelse, cst.If):
            parts = self.statement(orelse, self.context.origins.get(orelse, line))
            if len(parts) == 1 and isinstance(parts[0], cst.If):
                orelse = parts[0]
            else:
                orelse = cst.Else(body=block(parts))
        elif isinstance(orelse, cst.Else):
            orelse = cst.Else(body=block(self.block(statements_of(orelse.body), line)))
        return hoisted + [self._line(node.with_changes(test=test, body=body, orelse=orelse), line)]

    def while_statement(self, node: cst.While, line: int) -> list[Any]:
        with self._loop():
            body = self.block(statements_of(node.body), line)
        orelse = (
            self.block(statements_of(node.orelse.body), line) if node.orelse is not None else None
        )
        if not self.context.has_await(node.test):
            new = node.with_changes(
                body=block(body), orelse=cst.Else(block(orelse)) if orelse is not None else None
            )
            return [self._line(new, line)]
        # The test is evaluated inside the loop, so `continue` still re-tests it.
        hoisted, test = self.expression(node.test, line)
        verdict = self.context.new_temp("t", "the while test")
        hoisted.append(self._line(assign(verdict, test), line))
        leave: list[Any] = []
        finished = None
        if orelse is not None:
            finished = self.context.new_temp("t", "the while-else flag")
            leave.append(self._line(assign(finished, cst.Name("True")), line))
        leave.append(self._line(cst.Break(), line))
        exit_test = cst.UnaryOperation(cst.Not(), cst.Name(verdict))
        hoisted.append(self._line(cst.If(test=exit_test, body=block(leave)), line))
        loop = self._line(cst.While(test=cst.Name("True"), body=block(hoisted + body)), line)
        if finished is None:
            return [loop]
        return [
            self._line(assign(finished, cst.Name("False")), line),
            loop,
            self._line(cst.If(test=cst.Name(finished), body=block(orelse)), line),
        ]

    def for_statement(self, node: cst.For, line: int) -> list[Any]:
        hoisted, iterable = self.expression(node.iter, line)
        body = statements_of(node.body)
        orelse = (
            cst.Else(block(self.block(statements_of(node.orelse.body), line)))
            if node.orelse is not None
            else None
        )
        if not any(self._has_checkpoint(statement) for statement in body):
            # The else block is normalized already; recording it again would rebuild its
            # nodes (losing their try facts) and count its jumps as the loop's own.
            loop = self._record_completions(node.with_changes(iter=iterable, orelse=None))
            return hoisted + [self._line(loop.with_changes(orelse=orelse), line)]
        iterator = self.context.new_temp("it", f"the iterator of the 'for' loop at line {line}")
        item = self.context.new_temp("v", f"the item of the 'for' loop at line {line}")
        make_iterator = cst.Call(
            func=cst.Attribute(cst.Name(FRAME), cst.Name("iterate")),
            args=[cst.Arg(iterable)],
        )
        hoisted.append(self._line(assign(iterator, make_iterator), line))
        bind = cst.Assign(targets=[cst.AssignTarget(node.target)], value=cst.Name(item))
        with self._loop():
            new_body = [self._line(bind, line)] + self.block(body, line)
        loop = cst.For(
            target=cst.Name(item), iter=cst.Name(iterator), body=block(new_body), orelse=orelse
        )
        return hoisted + [self._line(loop, line)]

    def _has_checkpoint(self, statement: cst.BaseStatement) -> bool:
        return contains_checkpoint(statement, self.context)

    @contextmanager
    def _loop(self):
        self._loop_depth += 1
        try:
            yield
        finally:
            self._loop_depth -= 1

    # -- match --------------------------------------------------------------------------
    def match_statement(self, node: cst.Match, line: int) -> list[Any]:
        """Choose the case natively, then run its body from an `if` chain the lower pass can
        re-enter: a resumed instance goes back into the same case without matching again.

            match cmd:                    _durable_case1 = 0
                case ["go", where]:       match cmd:
                    await walk(where)         case ["go", where]:
                                                  _durable_case1 = 1
                                          if _durable_case1 == 1:
                                              await walk(where)
        """
        hoisted, subject = self.expression(node.subject, line)
        chosen = self.context.new_temp("case", f"the case chosen by the match at line {line}")
        hoisted.append(self._line(assign(chosen, cst.Integer("0")), line))
        cases = []
        bodies = []
        for number, case in enumerate(node.cases, start=1):
            case_line = self.context.origins.get(case, line)
            mark = self._line(assign(chosen, cst.Integer(str(number))), case_line)
            cases.append(case.with_changes(body=block([mark])))
            bodies.append((number, case_line, self.block(statements_of(case.body), case_line)))
        dispatch: cst.If | None = None
        for number, case_line, body in reversed(bodies):
            test = cst.Comparison(
                cst.Name(chosen), [cst.ComparisonTarget(cst.Equal(), cst.Integer(str(number)))]
            )
            dispatch = self._line(cst.If(test=test, body=block(body), orelse=dispatch), case_line)
        match = self._line(node.with_changes(subject=subject, cases=cases), line)
        return hoisted + [match] + ([dispatch] if dispatch is not None else [])

    # -- with ---------------------------------------------------------------------------
    def with_statement(self, node: cst.With, line: int) -> list[Any]:
        """`with resumable(m) as v: body` with a checkpoint inside, desugared as PEP 343 does,
        into a try the lower pass re-enters (calling the manager's re-entry on resume)::

            _durable_m1 = resumable(m)
            _durable_v2 = _durable_f.enter_context(_durable_m1)
            _durable_x3 = True
            try:
                try:
                    v = _durable_v2
                    body
                except BaseException as _durable_e4:
                    _durable_x3 = False
                    if not _durable_f.exit_context(_durable_m1, _durable_e4):
                        raise
            finally:
                if _durable_x3:
                    _durable_f.exit_context(_durable_m1, None)

        so `__exit__` runs once on every way out: the end of the block, an exception,
        `return`, `break` and `continue`.
        """
        asynchronous = node.asynchronous is not None
        item, *rest = node.items
        body = statements_of(node.body)
        if rest:
            inner = node.with_changes(items=rest, body=block(body))
            self.context.origins[inner] = line
            body = [inner]
        manager = self.context.new_temp("m", f"the context manager of the 'with' at line {line}")
        value = self.context.new_temp("v", f"the value of the 'with' at line {line}")
        exit_due = self.context.new_temp(
            "x", f"whether the 'with' at line {line} has still to call __exit__"
        )
        escaped = self.context.new_temp("e", "an exception leaving a 'with' block")

        def frame_call(method: str, *args: cst.BaseExpression) -> cst.BaseExpression:
            call = cst.Call(
                cst.Attribute(
                    cst.Name(FRAME), cst.Name(method + ("_async" if asynchronous else ""))
                ),
                [cst.Arg(arg) for arg in args],
            )
            return cst.Await(call) if asynchronous else call

        def statement(small: cst.BaseSmallStatement) -> cst.SimpleStatementLine:
            return self._line(small, line)

        enter = [
            statement(assign(manager, item.item)),
            statement(assign(value, frame_call("enter_context", cst.Name(manager)))),
            statement(assign(exit_due, cst.Name("True"))),
        ]
        if item.asname is not None:
            target = item.asname.name
            body = [statement(cst.Assign([cst.AssignTarget(target)], cst.Name(value))), *body]
        suppress = cst.If(
            test=cst.UnaryOperation(
                cst.Not(), frame_call("exit_context", cst.Name(manager), cst.Name(escaped))
            ),
            body=block([statement(cst.Raise())]),
        )
        guarded = cst.Try(
            body=block(body),
            handlers=[
                cst.ExceptHandler(
                    body=block(
                        [statement(assign(exit_due, cst.Name("False"))), self._line(suppress, line)]
                    ),
                    type=cst.Name("BaseException"),
                    name=cst.AsName(cst.Name(escaped)),
                )
            ],
        )
        exit_on_leaving = cst.If(
            test=cst.Name(exit_due),
            body=block(
                [
                    statement(
                        cst.Expr(frame_call("exit_context", cst.Name(manager), cst.Name("None")))
                    )
                ]
            ),
        )
        desugared = cst.Try(
            body=block([guarded]),
            finalbody=cst.Finally(block([self._line(exit_on_leaving, line)])),
        )
        self.context.origins[guarded] = line
        self.context.origins[desugared] = line
        target = item.asname.name if item.asname is not None else None
        self._reentries[guarded] = Reentry(manager, value, asynchronous, target)
        return self.block(enter, line) + self.statement(desugared, line)

    # -- try ----------------------------------------------------------------------------
    def try_statement(self, node: cst.Try, line: int) -> list[Any]:
        """Name every handled exception; record how control leaves a checkpointed finally."""
        facts = TryFacts(exceptions=[])
        if node.finalbody is not None and self._has_checkpoint(node.finalbody):
            facts.pending = self.context.new_temp(
                "pend", f"how control left the try at line {line} for its finally"
            )
            self._pending_names.add(facts.pending)
            self._finally_scopes.append(_FinallyScope(facts, self._loop_depth))
        body = block(self.block(statements_of(node.body), line))
        abandoned = self._abandoned_completions(body, line)
        handlers = []
        for handler in node.handlers:
            handler_line = self.context.origins.get(handler, line)
            exception = self.context.new_temp(
                "exc", f"the exception handled at line {handler_line}"
            )
            facts.exceptions.append(exception)
            statements = abandoned + self.block(statements_of(handler.body), handler_line)
            if handler.name is not None:
                user_name = handler.name.name
                # `except E as e` binds e for the handler only, as Python does.
                statements = [
                    self._line(
                        cst.Assign([cst.AssignTarget(user_name)], cst.Name(exception)), handler_line
                    ),
                    *statements,
                    self._line(assign(user_name.value, cst.Name("None")), handler_line),
                    self._line(cst.Del(cst.Name(user_name.value)), handler_line),
                ]
            # A bare `except:` is `except BaseException:`, spelled so it can bind a name.
            bare = handler.type is None
            handlers.append(
                handler.with_changes(
                    type=cst.Name("BaseException") if bare else handler.type,
                    whitespace_after_except=(
                        cst.SimpleWhitespace(" ") if bare else handler.whitespace_after_except
                    ),
                    name=cst.AsName(cst.Name(exception)),
                    body=block(statements),
                )
            )
        orelse = (
            cst.Else(block(self.block(statements_of(node.orelse.body), line)))
            if node.orelse is not None
            else None
        )
        if facts.pending is not None:
            self._finally_scopes.pop()
        finalbody = (
            cst.Finally(block(self.block(statements_of(node.finalbody.body), line)))
            if node.finalbody is not None
            else None
        )
        new = node.with_changes(body=body, handlers=handlers, orelse=orelse, finalbody=finalbody)
        facts.reenter = self._reentries.pop(node, None)
        self.context.try_facts[new] = facts
        return [self._line(new, line)]

    def leave_try(self, small: cst.BaseSmallStatement, line: int) -> list[Any]:
        """`return`/`break`/`continue` leaving checkpointed finally blocks: record it first."""
        hoisted: list[Any] = []
        if isinstance(small, cst.Return):
            hoisted, value = self.expression(small.value, line)
            result = self.context.new_temp("t", "the value being returned")
            hoisted.append(self._line(assign(result, value or cst.Name("None")), line))
            completion = cst.Tuple(
                [cst.Element(cst.SimpleString("'return'")), cst.Element(cst.Name(result))]
            )
            scopes = self._finally_scopes
            small = cst.Return(cst.Name(result))
        else:
            kind = "break" if isinstance(small, cst.Break) else "continue"
            completion = cst.Tuple([cst.Element(cst.SimpleString(repr(kind)))])
            scopes = [s for s in self._finally_scopes if s.loop_depth >= self._loop_depth]
            for scope in scopes:
                scope.facts.escapes.add(kind)
        for scope in scopes:
            hoisted.append(self._line(assign(scope.facts.pending, completion.deep_clone()), line))
        return hoisted + [self._line(small, line)]

    def _abandoned_completions(self, body: cst.CSTNode, line: int) -> list[Any]:
        """Statements that forget completions recorded in `body`: a handler of its try runs
        only when an exception replaced them (raised by a finally they were passing)."""
        finder = _PendingAssignments(self._pending_names)
        finder.walk(body)
        return [self._line(assign(name, cst.Name("None")), line) for name in sorted(finder.names)]

    def _record_completions(self, statement: cst.BaseStatement) -> cst.BaseStatement:
        """Inside a checkpointed finally's try, record returns/jumps in code left as is."""
        if not self._finally_scopes:
            return statement
        return statement.visit(_CompletionRecorder(self))

    # -- expressions --------------------------------------------------------------------
    def expression(self, node: cst.BaseExpression | None, line: int):
        """Return (statements, expression): the statements do every await of `node` in order."""
        if node is None or not self.context.has_await(node):
            return [], node
        if isinstance(node, cst.Await):
            hoisted, operand = self.expression(node.expression, line)
            result = self.context.new_temp("t", "the result of an await")
            hoisted.append(self._line(assign(result, node.with_changes(expression=operand)), line))
            return hoisted, cst.Name(result)
        if isinstance(node, cst.GeneratorExp):
            # Only its first iterable can await here (DUR112 refuses the rest): evaluated
            # first, in this scope, as Python does.
            hoisted, iterable = self.expression(node.for_in.iter, line)
            return hoisted, node.with_changes(for_in=node.for_in.with_changes(iter=iterable))
        if isinstance(node, cst.BooleanOperation):
            return self.boolean(node, line)
        if isinstance(node, cst.IfExp):
            return self.conditional(node, line)
        if isinstance(node, cst.Comparison):
            return self.comparison(node, line)
        if isinstance(node, cst.BinaryOperation):
            hoisted, (left, right) = self.sequence([node.left, node.right], line)
            return hoisted, node.with_changes(left=left, right=right)
        if isinstance(node, cst.UnaryOperation):
            hoisted, operand = self.expression(node.expression, line)
            return hoisted, node.with_changes(expression=operand)
        if isinstance(node, cst.Attribute):
            hoisted, value = self.expression(node.value, line)
            return hoisted, node.with_changes(value=value)
        if isinstance(node, cst.Subscript):
            hoisted, values = self.sequence([node.value] + _slice_values(node.slice), line)
            elements = _rebuild_slice(node.slice, values[1:])
            return hoisted, node.with_changes(value=values[0], slice=elements)
        if isinstance(node, cst.Call):
            return self.call(node, line)
        if isinstance(node, cst.List | cst.Tuple | cst.Set):
            values = [element.value for element in node.elements]
            kinds = [
                "*" if isinstance(element, cst.StarredElement) else "" for element in node.elements
            ]
            hoisted, values = self.sequence(values, line, kinds=kinds)
            elements = [e.with_changes(value=v) for e, v in zip(node.elements, values, strict=True)]
            return hoisted, node.with_changes(elements=elements)
        if isinstance(node, cst.Dict):
            return self.dictionary(node, line)
        if isinstance(node, cst.FormattedString):
            return self.formatted(node, line)
        if isinstance(node, cst.ConcatenatedString):
            hoisted, (left, right) = self.sequence([node.left, node.right], line)
            return hoisted, node.with_changes(left=left, right=right)
        if isinstance(node, cst.NamedExpr):
            hoisted, value = self.expression(node.value, line)
            return hoisted, node.with_changes(value=value)
        if isinstance(node, cst.ListComp | cst.SetComp | cst.DictComp):
            return self.comprehension(node, line)
        raise AssertionError(f"normalize: unexpected await inside {type(node).__name__}")

    def _is_frozen(self, node: cst.BaseExpression | None) -> bool:
        if node is None or isinstance(node, _LITERALS):
            return True
        if isinstance(node, cst.Name):
            return node.value in {"True", "False", "None"} or node.value.startswith(RESERVED_PREFIX)
        return False

    def freeze(self, node: cst.BaseExpression, line: int, kind: str = ""):
        """Evaluate `node` now into a temporary, so a later await cannot change it."""
        if self._is_frozen(node) and not kind:
            return [], node
        if kind == "*":
            node = cst.List([cst.StarredElement(node)])
        elif kind == "**":
            node = cst.Dict([cst.StarredDictElement(node)])
        name = self.context.new_temp("t", "a temporary")
        return [self._line(assign(name, node), line)], cst.Name(name)

    def sequence(self, values, line: int, kinds=None, freeze_last: bool = False):
        """Hoist values evaluated left to right: everything before the last await is frozen."""
        kinds = kinds or [""] * len(values)
        has_await = self.context.has_await
        last = max((i for i, v in enumerate(values) if v is not None and has_await(v)), default=-1)
        hoisted: list[Any] = []
        result = []
        for index, (value, kind) in enumerate(zip(values, kinds, strict=True)):
            if value is None or index > last:
                result.append(value)
                continue
            more, value = self.expression(value, line)
            hoisted += more
            if index < last or freeze_last:
                more, value = self.freeze(value, line, kind)
                hoisted += more
            result.append(value)
        return hoisted, result

    def call(self, node: cst.Call, line: int):
        values = [node.func] + [argument.value for argument in node.args]
        kinds = [""] + [argument.star for argument in node.args]
        hoisted, values = self.sequence(values, line, kinds=kinds)
        arguments = [
            argument.with_changes(value=value)
            for argument, value in zip(node.args, values[1:], strict=True)
        ]
        return hoisted, node.with_changes(func=values[0], args=arguments)

    def arguments(self, args: Sequence[cst.Arg], line: int):
        hoisted, values = self.sequence(
            [argument.value for argument in args], line, kinds=[a.star for a in args]
        )
        return hoisted, [a.with_changes(value=v) for a, v in zip(args, values, strict=True)]

    def dictionary(self, node: cst.Dict, line: int):
        values, kinds = [], []
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                values += [element.key, element.value]
                kinds += ["", ""]
            else:
                values.append(element.value)
                kinds.append("**")
        hoisted, values = self.sequence(values, line, kinds=kinds)
        elements, position = [], 0
        for element in node.elements:
            if isinstance(element, cst.DictElement):
                key, value = values[position : position + 2]
                elements.append(element.with_changes(key=key, value=value))
                position += 2
            else:
                elements.append(element.with_changes(value=values[position]))
                position += 1
        return hoisted, node.with_changes(elements=elements)

    def formatted(self, node: cst.FormattedString, line: int):
        """f-strings format each part as they go, so an earlier part is formatted early."""
        has_await = self.context.has_await
        parts = list(node.parts)
        last = max(
            (
                i
                for i, part in enumerate(parts)
                if isinstance(part, cst.FormattedStringExpression) and has_await(part)
            ),
            default=-1,
        )
        hoisted: list[Any] = []
        for index, part in enumerate(parts[: last + 1]):
            if not isinstance(part, cst.FormattedStringExpression):
                continue
            if index < last:
                more, value = self.expression(part.expression, line)
                hoisted += more
                formatted_part = node.with_changes(parts=[part.with_changes(expression=value)])
                name = self.context.new_temp("t", "a temporary")
                hoisted.append(self._line(assign(name, formatted_part), line))
                parts[index] = cst.FormattedStringExpression(cst.Name(name))
            else:
                more, value = self.expression(part.expression, line)
                hoisted += more
                parts[index] = part.with_changes(expression=value)
        return hoisted, node.with_changes(parts=parts)

    def comprehension(self, node: cst.ListComp | cst.SetComp | cst.DictComp, line: int):
        """A comprehension with awaits becomes loops over renamed variables, so its awaits
        are checkpoints like any other; the first iterable is evaluated first, outside.

            [await f(x) for x in xs if x]    ->    _durable_t1 = []
                                                   for _durable_x_2 in xs:
                                                       if _durable_x_2:
                                                           _durable_t1.append(await f(_durable_x_2))
        """
        clauses = comprehension_clauses(node)
        renames: dict[str, str] = {}
        for clause in clauses:
            for name in sorted(_target_names(clause.target)):
                renames.setdefault(
                    name,
                    self.context.new_temp(
                        f"{name}_", f"the comprehension variable {name!r} at line {line}"
                    ),
                )
        rename = _Renamer(renames)
        result = self.context.new_temp("t", f"the comprehension at line {line}")
        if isinstance(node, cst.DictComp):
            key = self.context.new_temp("t", "a comprehension key")
            innermost = [
                assign(key, node.key.visit(rename)),
                cst.Assign(
                    [
                        cst.AssignTarget(
                            cst.Subscript(
                                cst.Name(result), [cst.SubscriptElement(cst.Index(cst.Name(key)))]
                            )
                        )
                    ],
                    node.value.visit(rename),
                ),
            ]
            empty: cst.BaseExpression = cst.Dict([])
        else:
            method = "append" if isinstance(node, cst.ListComp) else "add"
            call = cst.Call(
                cst.Attribute(cst.Name(result), cst.Name(method)), [cst.Arg(node.elt.visit(rename))]
            )
            innermost = [cst.Expr(call)]
            empty = cst.List([]) if isinstance(node, cst.ListComp) else cst.Call(cst.Name("set"))
        body: list[Any] = [cst.SimpleStatementLine([small]) for small in innermost]
        for index, clause in reversed(list(enumerate(clauses))):
            for condition in reversed(clause.ifs):
                body = [cst.If(test=condition.test.visit(rename), body=block(body))]
            iterable = clause.iter if index == 0 else clause.iter.visit(rename)
            body = [cst.For(target=clause.target.visit(rename), iter=iterable, body=block(body))]
        loops = [cst.SimpleStatementLine([assign(result, empty)]), *body]
        return self.block(loops, line), cst.Name(result)

    def boolean(self, node: cst.BooleanOperation, line: int):
        if not self.context.has_await(node.right):
            hoisted, left = self.expression(node.left, line)
            return hoisted, node.with_changes(left=left)
        hoisted, left = self.expression(node.left, line)
        result = self.context.new_temp("t", f"the value of an '{_op(node.operator)}' expression")
        hoisted.append(self._line(assign(result, left), line))
        more, right = self.expression(node.right, line)
        inner = more + [self._line(assign(result, right), line)]
        test: cst.BaseExpression = cst.Name(result)
        if isinstance(node.operator, cst.Or):
            test = cst.UnaryOperation(cst.Not(), test)
        hoisted.append(self._line(cst.If(test=test, body=block(inner)), line))
        return hoisted, cst.Name(result)

    def conditional(self, node: cst.IfExp, line: int):
        has_await = self.context.has_await
        hoisted, test = self.expression(node.test, line)
        if not (has_await(node.body) or has_await(node.orelse)):
            return hoisted, node.with_changes(test=test)
        result = self.context.new_temp("t", "the value of a conditional expression")
        body, body_value = self.expression(node.body, line)
        other, other_value = self.expression(node.orelse, line)
        statement = cst.If(
            test=test,
            body=block(body + [self._line(assign(result, body_value), line)]),
            orelse=cst.Else(block(other + [self._line(assign(result, other_value), line)])),
        )
        return hoisted + [self._line(statement, line)], cst.Name(result)

    def comparison(self, node: cst.Comparison, line: int):
        targets = list(node.comparisons)
        if not any(self.context.has_await(t.comparator) for t in targets[1:]):
            values = [node.left, targets[0].comparator]
            hoisted, (left, first) = self.sequence(values, line)
            rebuilt = [targets[0].with_changes(comparator=first)] + targets[1:]
            return hoisted, node.with_changes(left=left, comparisons=rebuilt)
        # A chain with an await past its first link: one link at a time, short-circuiting.
        result = self.context.new_temp("t", "the value of a comparison")
        hoisted, left = self.expression(node.left, line)
        more, left = self.freeze(left, line)
        hoisted += more
        return hoisted + self._chain(result, left, targets, line), cst.Name(result)

    def _chain(self, result: str, left, targets, line: int) -> list[Any]:
        first, rest = targets[0], targets[1:]
        hoisted, right = self.expression(first.comparator, line)
        if rest:
            more, right = self.freeze(right, line)
            hoisted += more
        link = cst.Comparison(left=left, comparisons=[first.with_changes(comparator=right)])
        hoisted.append(self._line(assign(result, link), line))
        if rest:
            tail = self._chain(result, right.deep_clone(), rest, line)
            hoisted.append(self._line(cst.If(test=cst.Name(result), body=block(tail)), line))
        return hoisted


class _OwnScopeTransformer(cst.CSTTransformer):
    """A transformer that stays in the function's own scope (nested defs, classes and
    lambdas are left as they are)."""

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return False


class _CompletionRecorder(_OwnScopeTransformer):
    """Applies `NormalizePass.leave_try` inside statements that normalize leaves as they are."""

    def __init__(self, normalize: NormalizePass) -> None:
        self.normalize = normalize
        self.loops: list[int] = []

    def visit_For(self, node: cst.For) -> None:
        self.normalize._loop_depth += 1

    def leave_For(self, original: cst.For, updated: cst.For) -> cst.For:
        self.normalize._loop_depth -= 1
        return updated

    def visit_While(self, node: cst.While) -> None:
        self.normalize._loop_depth += 1

    def leave_While(self, original: cst.While, updated: cst.While) -> cst.While:
        self.normalize._loop_depth -= 1
        return updated

    def leave_Try(self, original: cst.Try, updated: cst.Try) -> cst.Try:
        normalize = self.normalize
        forget = normalize._abandoned_completions(updated.body, normalize.context.first_line)
        if not forget or not updated.handlers:
            return updated
        handlers = [
            handler.with_changes(
                body=block([*(f.deep_clone() for f in forget), *statements_of(handler.body)])
            )
            for handler in updated.handlers
        ]
        return updated.with_changes(handlers=handlers)

    def leave_SimpleStatementLine(self, original, updated):
        lines: list[Any] = []
        for small in updated.body:
            if isinstance(small, cst.Return | cst.Break | cst.Continue):
                lines.extend(self.normalize.leave_try(small, self.normalize.context.first_line))
            else:
                lines.append(
                    cst.SimpleStatementLine(
                        [small.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)]
                    )
                )
        if len(lines) == 1 and lines[0].body == updated.body:
            return updated
        return cst.FlattenSentinel(lines)


class _PendingAssignments(Visitor):
    """Collects the pending-completion variables assigned anywhere in a tree."""

    def __init__(self, pending_names: set[str]) -> None:
        self.pending_names = pending_names
        self.names: set[str] = set()

    def visit_AssignTarget(self, node: cst.AssignTarget) -> None:
        target = node.target
        if isinstance(target, cst.Name) and target.value in self.pending_names:
            self.names.add(target.value)


def _target_names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, cst.Tuple | cst.List):
        return {name for element in target.elements for name in _target_names(element.value)}
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return set()


class _Renamer(cst.CSTTransformer):
    """Renames variable references (not attribute or keyword names)."""

    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        new = self.renames.get(updated.value)
        return updated.with_changes(value=new) if new is not None else updated

    def leave_Attribute(self, original: cst.Attribute, updated: cst.Attribute) -> cst.Attribute:
        return updated.with_changes(attr=original.attr)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)


def _slice_values(elements: Sequence[cst.SubscriptElement]) -> list[Any]:
    """The expressions of a subscript in evaluation order (None for an omitted bound)."""
    values: list[Any] = []
    for element in elements:
        index = element.slice
        if isinstance(index, cst.Index):
            values.append(index.value)
        else:
            values.extend([index.lower, index.upper, index.step])
    return values


def _rebuild_slice(elements: Sequence[cst.SubscriptElement], values: list[Any]) -> list[Any]:
    rebuilt, position = [], 0
    for element in elements:
        index = element.slice
        if isinstance(index, cst.Index):
            rebuilt.append(element.with_changes(slice=index.with_changes(value=values[position])))
            position += 1
        else:
            lower, upper, step = values[position : position + 3]
            position += 3
            rebuilt.append(
                element.with_changes(slice=index.with_changes(lower=lower, upper=upper, step=step))
            )
    return rebuilt


def _op(operator: cst.BaseBooleanOp) -> str:
    return "and" if isinstance(operator, cst.And) else "or"


def spell_out_super(
    function: cst.FunctionDef, free_names: tuple[str, ...], context: CompileContext
) -> cst.FunctionDef:
    """``super()`` -> ``super(__class__, self)`` in a method (a function with the
    ``__class__`` cell), before liveness, which must see that it reads the first parameter."""
    if "__class__" not in free_names:
        return function
    first = _first_parameter(function.params)
    if first is None:
        return function
    rewrite = _ZeroArgumentSuper(first, context.origins)
    return function.with_changes(body=function.body.visit(rewrite))


def _first_parameter(params: cst.Parameters) -> str | None:
    positional = [*params.posonly_params, *params.params]
    return positional[0].name.value if positional else None


class _ZeroArgumentSuper(_OwnScopeTransformer):
    """``super()`` -> ``super(__class__, self)``: what CPython does for a method, spelled
    out, because the compiled function is not defined in the class body that gives it the
    ``__class__`` cell (the original function's cell is passed in as a free variable)."""

    def __init__(self, first_parameter: str, origins: dict[Any, Any]) -> None:
        self.first_parameter = first_parameter
        self.origins = origins

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode):
        result = super().on_leave(original, updated)
        if result is not original and original in self.origins:
            self.origins[result] = self.origins[original]  # keep the user's line
        return result

    def leave_Call(self, original: cst.Call, updated: cst.Call) -> cst.Call:
        if (
            isinstance(updated.func, cst.Name)
            and updated.func.value == "super"
            and not updated.args
        ):
            return updated.with_changes(
                args=[cst.Arg(cst.Name("__class__")), cst.Arg(cst.Name(self.first_parameter))]
            )
        return updated
