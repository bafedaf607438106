"""Pass 4, lower: make the normalized body re-enterable at any resume point.

Input: the normalized body and its `Analysis`. Output: `async def name(_durable_f)` whose
prologue either binds the arguments or restores the live locals of the saved resume point
into `_durable_rp`, and whose statements are guarded so that a resumed call skips straight
to that point without re-deciding a branch or re-testing a loop. Example::

    if x > 0:                         if (1 <= _durable_rp <= 1) if _durable_rp else (x > 0):
        y = await step()                  if not _durable_rp:
                                              y = await _durable_f.at(1, step())
                                          elif _durable_rp == 1:
                                              _durable_rp = 0
                                              y = await _durable_f.resume(1)

A statement without a checkpoint inside runs under `if not _durable_rp:`; a block without any
checkpoint runs exactly as written.
"""

from __future__ import annotations

from typing import Any

import libcst as cst

from ._names import FRAME, PAUSE, RESUME, STEP
from ._records import CompileContext, as_await_statement
from .liveness import Analysis
from .normalize import assign, block, statements_of


def _name(value: str) -> cst.Name:
    return cst.Name(value)


def _frame_call(method: str, *args: cst.BaseExpression) -> cst.Call:
    return cst.Call(
        func=cst.Attribute(_name(FRAME), _name(method)), args=[cst.Arg(a) for a in args]
    )


def _not_resuming() -> cst.BaseExpression:
    return cst.UnaryOperation(cst.Not(), _name(RESUME))


def _in_span(span: tuple[int, int]) -> cst.BaseExpression:
    low, high = span
    if low == high:
        return cst.Comparison(
            _name(RESUME), [cst.ComparisonTarget(cst.Equal(), cst.Integer(str(low)))]
        )
    return cst.Comparison(
        cst.Integer(str(low)),
        [
            cst.ComparisonTarget(cst.LessThanEqual(), _name(RESUME)),
            cst.ComparisonTarget(cst.LessThanEqual(), cst.Integer(str(high))),
        ],
    )


def _parenthesized(node: cst.BaseExpression) -> cst.BaseExpression:
    return node.with_changes(
        lpar=[cst.LeftParen(), *node.lpar], rpar=[*node.rpar, cst.RightParen()]
    )


def parameter_names(params: cst.Parameters) -> list[str]:
    """Every parameter name in binding order."""
    names = [p.name.value for p in (*params.posonly_params, *params.params)]
    if isinstance(params.star_arg, cst.Param):
        names.append(params.star_arg.name.value)
    names += [p.name.value for p in params.kwonly_params]
    if params.star_kwarg is not None:
        names.append(params.star_kwarg.name.value)
    return names


class LowerPass:
    """Emits the re-enterable function (module docstring)."""

    def __init__(self, context: CompileContext, analysis: Analysis) -> None:
        self.context = context
        self.analysis = analysis

    def _at(self, statement: cst.CSTNode, line: int) -> cst.CSTNode:
        self.context.origins[statement] = line
        return statement

    def run(self, function: cst.FunctionDef, body: list[cst.BaseStatement]) -> cst.FunctionDef:
        line = self.context.origins.get(function, self.context.first_line)
        prologue = self.prologue(function, line)
        if not self.analysis.points:
            lowered = body
        else:
            lowered = self.block(body, line)
        compiled = cst.FunctionDef(
            name=function.name,
            params=cst.Parameters(params=[cst.Param(_name(FRAME))]),
            body=block(prologue + lowered),
            asynchronous=cst.Asynchronous(),
        )
        self.context.origins[compiled] = line
        return compiled

    def prologue(self, function: cst.FunctionDef, line: int) -> list[Any]:
        statements = [
            self._line(assign(RESUME, _frame_call("enter")), line),
        ]
        captured = sorted(self.context.captured)
        if captured:
            # Captured variables are cells the frame owns (emit makes them free variables of
            # the compiled function), so a resumed frame and its closures share them again.
            nonlocal_names = cst.Nonlocal([cst.NameItem(_name(name)) for name in captured])
            statements.insert(0, self._line(nonlocal_names, line))
        parameters = parameter_names(function.params)
        bind = []
        if parameters:
            targets = cst.Tuple([cst.Element(_name(p)) for p in parameters])
            bind.append(
                self._line(
                    cst.Assign(
                        [cst.AssignTarget(targets)],
                        cst.Attribute(_name(FRAME), _name("arguments")),
                    ),
                    line,
                )
            )
        saved = sorted({name for point in self.analysis.points.values() for name in point.live})
        if not saved:
            if bind:
                statements.append(self._at(cst.If(test=_not_resuming(), body=block(bind)), line))
            return statements
        restore = [self._line(assign("_durable_saved", _frame_call("restore")), line)]
        for name in saved:
            test = cst.Comparison(
                cst.SimpleString(repr(name)),
                [cst.ComparisonTarget(cst.In(), _name("_durable_saved"))],
            )
            value = cst.Subscript(
                _name("_durable_saved"),
                [cst.SubscriptElement(cst.Index(cst.SimpleString(repr(name))))],
            )
            restore.append(
                self._at(
                    cst.If(test=test, body=block([self._line(assign(name, value), line)])), line
                )
            )
        statements.append(
            self._at(
                cst.If(
                    test=_name(RESUME),
                    body=block(restore),
                    orelse=cst.Else(block(bind)) if bind else None,
                ),
                line,
            )
        )
        return statements

    def _line(self, small: cst.BaseSmallStatement, line: int) -> cst.SimpleStatementLine:
        return self._at(cst.SimpleStatementLine([small]), line)

    # -- statements ---------------------------------------------------------------------
    def block(self, statements, line: int) -> list[Any]:
        """Guard runs of checkpoint-free statements; lower the others.

        A run that follows a checkpoint joins that checkpoint's block: it runs exactly when
        the checkpoint does (normally, or just after resuming there).
        """
        result: list[Any] = []
        plain: list[Any] = []
        after_checkpoint: cst.If | None = None

        def flush() -> None:
            nonlocal after_checkpoint
            if plain and after_checkpoint is not None:
                body = [*after_checkpoint.body.body, *plain]
                result[-1] = self._at(
                    after_checkpoint.with_changes(body=block(body)),
                    self.context.origins[after_checkpoint],
                )
            elif plain:
                first = self.context.origins.get(plain[0], line)
                result.append(
                    self._at(cst.If(test=_not_resuming(), body=block(list(plain))), first)
                )
            plain.clear()
            after_checkpoint = None

        for statement in statements:
            if statement in self.analysis.spans:
                flush()
                point_id = self.analysis.ids.get(statement)
                origin = self.context.origins.get(statement, line)
                if point_id is not None:
                    after_checkpoint = self.checkpoint(statement, point_id, origin)
                    result.append(after_checkpoint)
                    continue
                lowered = self.statement(statement, origin)
                result.extend(lowered if isinstance(lowered, list) else [lowered])
            else:
                plain.append(statement)
        flush()
        return result

    def statement(self, statement: cst.CSTNode, line: int) -> cst.BaseStatement:
        span = self.analysis.spans[statement]
        point_id = self.analysis.ids.get(statement)
        if point_id is not None:
            return self.checkpoint(statement, point_id, line)
        if isinstance(statement, cst.If):
            return self.if_statement(statement, line)
        if isinstance(statement, cst.While):
            body_span = self.analysis.span_of(statements_of(statement.body))
            return self._at(
                statement.with_changes(
                    test=self._resume_or(body_span, statement.test),
                    body=block(self.block(statements_of(statement.body), line)),
                    orelse=self._else(statement.orelse, line),
                ),
                line,
            )
        if isinstance(statement, cst.For):
            return self.for_statement(statement, line)
        if isinstance(statement, cst.Try):
            return self.try_statement(statement, line)
        raise AssertionError(f"lower: checkpoint {span} inside {type(statement).__name__}")

    def _resume_or(self, body_span, test: cst.BaseExpression) -> cst.BaseExpression:
        """The test of a branch or loop: resumed into its body, or evaluated when running."""
        if body_span is None:
            return cst.BooleanOperation(_not_resuming(), cst.And(), _parenthesized(test))
        return cst.IfExp(
            test=_name(RESUME),
            body=_parenthesized(_in_span(body_span)),
            orelse=_parenthesized(test),
        )

    def _else(self, orelse, line: int):
        if orelse is None:
            return None
        return cst.Else(block(self.block(statements_of(orelse.body), line)))

    def if_statement(self, statement: cst.If, line: int) -> cst.If:
        body_span = self.analysis.span_of(statements_of(statement.body))
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            lowered = self.block([orelse], line)
            orelse = (
                lowered[0]
                if len(lowered) == 1 and orelse in self.analysis.spans
                else cst.Else(block(lowered))
            )
        else:
            orelse = self._else(orelse, line)
        return self._at(
            statement.with_changes(
                test=self._resume_or(body_span, statement.test),
                body=block(self.block(statements_of(statement.body), line)),
                orelse=orelse,
            ),
            line,
        )

    def for_statement(self, statement: cst.For, line: int) -> cst.For:
        body_span = self.analysis.span_of(statements_of(statement.body))
        iterator = statement.iter
        if body_span is None:
            # Checkpoints only in `else`: skip the loop when resuming.
            source: cst.BaseExpression = cst.IfExp(
                test=_not_resuming(), body=iterator, orelse=cst.Tuple([])
            )
        else:
            resumed = cst.IfExp(
                test=_in_span(body_span),
                body=_frame_call("reenter", iterator.deep_clone()),
                orelse=cst.Tuple([]),
            )
            source = cst.IfExp(test=_not_resuming(), body=iterator, orelse=_parenthesized(resumed))
        return self._at(
            statement.with_changes(
                iter=source,
                body=block(self.block(statements_of(statement.body), line)),
                orelse=self._else(statement.orelse, line),
            ),
            line,
        )

    def try_statement(self, statement: cst.Try, line: int) -> list[Any]:
        """Re-enter a try: a handler by raising its saved exception again inside the body,
        a finally by replaying how control left the try (see `_replay`). While a parked run
        is being closed, no handler or finally of the user runs."""
        facts = self.context.try_facts[statement]
        core: list[Any] = []
        for handler, exception in zip(statement.handlers, facts.exceptions, strict=True):
            span = self.analysis.span_of(statements_of(handler.body))
            if span is not None:
                core.append(
                    self._at(
                        cst.If(
                            _in_span(span), block([self._line(cst.Raise(_name(exception)), line)])
                        ),
                        line,
                    )
                )
        body_span = self.analysis.span_of(statements_of(statement.body))
        if facts.reenter is not None and body_span is not None:
            core.append(self._reentry(facts.reenter, body_span, line))
        core += self.block(statements_of(statement.body), line)
        closing_guard = self._at(
            cst.If(
                cst.Attribute(_name(FRAME), _name("closing")),
                block([self._line(cst.Raise(), line)]),
            ),
            line,
        )
        if statement.handlers:
            handlers = [
                handler.with_changes(
                    body=block(
                        [closing_guard.deep_clone()] + self.block(statements_of(handler.body), line)
                    )
                )
                for handler in statement.handlers
            ]
            core = [
                self._at(
                    cst.Try(
                        body=block(core),
                        handlers=handlers,
                        orelse=self._else(statement.orelse, line),
                    ),
                    line,
                )
            ]
        if statement.finalbody is None:
            return core
        finally_statements = statements_of(statement.finalbody.body)
        finally_body = [
            self._at(
                cst.If(
                    cst.UnaryOperation(cst.Not(), cst.Attribute(_name(FRAME), _name("closing"))),
                    block(self.block(finally_statements, line)),
                ),
                line,
            )
        ]
        prologue: list[Any] = []
        if facts.pending is not None:
            span = self.analysis.span_of(finally_statements)
            escaped = self.context.new_temp("t", "an exception leaving a try")
            record = cst.ExceptHandler(
                body=block(
                    [
                        self._line(
                            assign(
                                facts.pending,
                                cst.Tuple(
                                    [
                                        cst.Element(cst.SimpleString("'raise'")),
                                        cst.Element(_name(escaped)),
                                    ]
                                ),
                            ),
                            line,
                        ),
                        self._line(cst.Raise(), line),
                    ]
                ),
                type=_name("BaseException"),
                name=cst.AsName(_name(escaped)),
            )
            core = [self._at(cst.Try(body=block(core), handlers=[record]), line)]
            resuming_finally = _in_span(span)
            # Reset only when really entering the try: resumed anywhere inside it, the saved
            # completion stands (a return may be in flight through an inner finally).
            prologue.append(
                self._at(
                    cst.If(
                        _not_resuming(),
                        block([self._line(assign(facts.pending, _name("None")), line)]),
                    ),
                    line,
                )
            )
            core = [
                self._at(
                    cst.If(resuming_finally.deep_clone(), block(self._replay(facts, line))), line
                )
            ] + core
        return prologue + [
            self._at(cst.Try(body=block(core), finalbody=cst.Finally(block(finally_body))), line)
        ]

    def _reentry(self, reentry, body_span, line: int) -> cst.If:
        """Resuming inside a `with resumable(...)` block: enter its manager again."""
        method = "reenter_context_async" if reentry.asynchronous else "reenter_context"
        value: cst.BaseExpression = _frame_call(method, _name(reentry.manager))
        if reentry.asynchronous:
            value = cst.Await(value)
        statements = [self._line(assign(reentry.value, value), line)]
        if reentry.target is not None:
            rebind = cst.Assign(
                [cst.AssignTarget(reentry.target.deep_clone())], _name(reentry.value)
            )
            statements.append(self._line(rebind, line))
        return self._at(cst.If(_in_span(body_span), block(statements)), line)

    def _replay(self, facts, line: int) -> list[Any]:
        """Leave the try as it was left when the finally was checkpointed, so that Python runs
        the finally (now resuming inside it) and then completes that same return, raise,
        break or continue."""
        pending = facts.pending

        def when(kind: str, action: cst.BaseSmallStatement) -> cst.If:
            test = cst.Comparison(
                cst.Subscript(_name(pending), [cst.SubscriptElement(cst.Index(cst.Integer("0")))]),
                [cst.ComparisonTarget(cst.Equal(), cst.SimpleString(repr(kind)))],
            )
            return self._at(cst.If(test, block([self._line(action, line)])), line)

        def second() -> cst.Subscript:
            return cst.Subscript(
                _name(pending), [cst.SubscriptElement(cst.Index(cst.Integer("1")))]
            )

        actions = [when("raise", cst.Raise(second())), when("return", cst.Return(second()))]
        if "break" in facts.escapes:
            actions.append(when("break", cst.Break()))
        if "continue" in facts.escapes:
            actions.append(when("continue", cst.Continue()))
        present = cst.Comparison(_name(pending), [cst.ComparisonTarget(cst.IsNot(), _name("None"))])
        return [self._at(cst.If(present, block(actions)), line)]

    def checkpoint(self, statement: cst.CSTNode, point_id: int, line: int) -> cst.If:
        checkpoint = as_await_statement(statement)
        operand = checkpoint.operand
        if isinstance(operand, cst.Call) and isinstance(operand.func, cst.Name):
            if operand.func.value == PAUSE:
                operand = operand.with_changes(func=cst.Attribute(_name(FRAME), _name("pause")))
        number = cst.Integer(str(point_id))

        def store(value: cst.BaseExpression) -> cst.SimpleStatementLine:
            awaited = cst.Await(value)
            if checkpoint.target is None:
                return self._line(cst.Expr(awaited), line)
            return self._line(assign(checkpoint.target, awaited), line)

        # if not rp or rp == k:
        #     step = _durable_f.at(k, E) if not rp else _durable_f.resume(k)
        #     rp = 0                    (before the await: it may raise into a handler)
        #     target = await step
        step = cst.IfExp(
            test=_not_resuming(),
            body=_frame_call("at", number, operand),
            orelse=_frame_call("resume", number.deep_clone()),
        )
        here = cst.BooleanOperation(
            _not_resuming(),
            cst.Or(),
            cst.Comparison(_name(RESUME), [cst.ComparisonTarget(cst.Equal(), number.deep_clone())]),
        )
        body = [
            self._line(assign(STEP, step), line),
            self._line(assign(RESUME, cst.Integer("0")), line),
            store(_name(STEP)),
        ]
        return self._at(cst.If(test=here, body=block(body)), line)
