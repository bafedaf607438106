"""Pairs libcst statements with the `ast` statements parsed from the same text.

Both trees have the same statement structure, so walking them side by side carries line
numbers across without libcst's position metadata (which costs more than all passes together).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Sequence
from typing import Any

import libcst as cst


def pair_statements(
    cst_statements: Sequence[cst.CSTNode], ast_statements: Sequence[ast.stmt]
) -> Iterator[tuple[cst.CSTNode, ast.stmt]]:
    """Yield (libcst node, ast node) for every statement, nested ones included.

    A `SimpleStatementLine` is paired with the ast statement of its first small statement,
    and each small statement with its own.
    """
    flat = iter(ast_statements)
    for statement in cst_statements:
        if isinstance(statement, cst.SimpleStatementLine | cst.SimpleStatementSuite):
            for index, small in enumerate(statement.body):
                node = next(flat)
                if index == 0:
                    yield statement, node
                yield small, node
            continue
        node = next(flat)
        yield statement, node
        yield from _pair_children(statement, node)


def _body(suite: cst.BaseSuite) -> Sequence[cst.CSTNode]:
    return suite.body if isinstance(suite, cst.IndentedBlock) else [suite]


def _pair_children(statement: cst.CSTNode, node: ast.stmt) -> Iterator[tuple[Any, ...]]:
    if isinstance(statement, cst.If):
        yield from pair_statements(_body(statement.body), node.body)
        orelse = statement.orelse
        if isinstance(orelse, cst.If):
            yield from pair_statements([orelse], node.orelse)
        elif orelse is not None:
            yield from pair_statements(_body(orelse.body), node.orelse)
    elif isinstance(statement, cst.For | cst.While):
        yield from pair_statements(_body(statement.body), node.body)
        if statement.orelse is not None:
            yield from pair_statements(_body(statement.orelse.body), node.orelse)
    elif isinstance(statement, cst.Try | cst.TryStar):
        yield from pair_statements(_body(statement.body), node.body)
        for handler, handler_node in zip(statement.handlers, node.handlers, strict=True):
            yield handler, handler_node
            yield from pair_statements(_body(handler.body), handler_node.body)
        if statement.orelse is not None:
            yield from pair_statements(_body(statement.orelse.body), node.orelse)
        if statement.finalbody is not None:
            yield from pair_statements(_body(statement.finalbody.body), node.finalbody)
    elif isinstance(statement, cst.Match):
        for case, case_node in zip(statement.cases, node.cases, strict=True):
            yield case, case_node.pattern
            yield from pair_statements(_body(case.body), case_node.body)
    elif isinstance(statement, cst.With | cst.FunctionDef | cst.ClassDef):
        yield from pair_statements(_body(statement.body), node.body)
