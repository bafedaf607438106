"""Run compiler passes one at a time on source text, for the per-pass tests."""

from __future__ import annotations

import textwrap

import libcst as cst

from durable.transform._records import CompileContext
from durable.transform.analyze import AnalyzePass
from durable.transform.liveness import Analysis, LivenessPass
from durable.transform.normalize import NormalizePass


def context_for(source: str) -> CompileContext:
    return CompileContext(
        filename="example.py",
        first_line=1,
        source=textwrap.dedent(source).lstrip("\n"),
        qualname="",
    )


def analyzed(source: str) -> tuple[CompileContext, cst.FunctionDef]:
    context = context_for(source)
    return context, AnalyzePass(context).run()


def normalized(source: str) -> str:
    """The normalized body as source text (no indentation)."""
    context, function = analyzed(source)
    body = NormalizePass(context).run(function.body)
    return cst.Module(body=body).code


def liveness(source: str) -> Analysis:
    context, function = analyzed(source)
    body = NormalizePass(context).run(function.body)
    return LivenessPass(context).run(body)


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")
