"""The compiler: one `async def` in, one resumable function out.

Passes, one module each: `analyze` -> `normalize` -> `liveness` -> `lower` -> `emit`;
`pipeline` runs them and caches the result by source. The package imports them (and libcst)
on first use: a process that only reads stored state never compiles.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import libcst as cst

    from .pipeline import CodeBlock, compile_function

__all__ = [
    "CodeBlock",
    "DurableAstTransformer",
    "compile_function",
    "transform_to_durable_ast",
]


def __getattr__(name: str) -> Any:
    if name in ("CodeBlock", "compile_function"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DurableAstTransformer:
    """Compiles the source text of one ``async def`` into its resumable form.

    ``transform(source)`` returns the compiled function as a libcst module, ready to print
    with ``.code``; compile errors raise `DurableCompileError` listing every problem.
    """

    def __init__(self, *, filename: str = "<durable>", first_line: int = 1) -> None:
        self.filename = filename
        self.first_line = first_line

    def transform(self, source: str) -> cst.Module:
        import libcst as cst

        from .pipeline import compile_source

        shape = compile_source(source, filename=self.filename, first_line=self.first_line)
        return cst.Module(body=[shape.emitted.compiled])


def transform_to_durable_ast(function_or_source: Callable[..., Any] | str) -> cst.Module:
    """The compiled, resumable form of an ``async def`` (a function or its source text)."""
    if isinstance(function_or_source, str):
        return DurableAstTransformer().transform(function_or_source)
    from .pipeline import read_source

    source, filename, first_line = read_source(function_or_source)
    return DurableAstTransformer(filename=filename, first_line=first_line).transform(source)
