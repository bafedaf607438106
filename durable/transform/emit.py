"""Pass 5, emit: turn the lowered function into a code object that points at the user's lines.

Input: the lowered `FunctionDef`. Output: `Emitted` — the readable compiled source, the
compiled function's code object (its free variables are the original function's, so closures
keep reading the same cells) and an argument binder with the original signature. Every
statement of the generated code carries the line it came from in the user's file, so
tracebacks show the user's source.
"""

from __future__ import annotations

import ast
import linecache
import types
from dataclasses import dataclass
from functools import cached_property

import libcst as cst

from ._lines import pair_statements
from ._names import RESERVED_PREFIX
from ._records import CompileContext
from .lower import parameter_names

_FACTORY = RESERVED_PREFIX + "factory"
_BINDER = RESERVED_PREFIX + "bind"
#: The compiled function's name inside the factory; its own name would shadow the global
#: (or closure) the function uses to call itself.
_COMPILED = RESERVED_PREFIX + "compiled"


@dataclass(frozen=True)
class Emitted:
    compiled: cst.FunctionDef
    code: types.CodeType
    binder_code: types.CodeType
    #: Free variables of `code` that are the frame's own cells (variables nested functions
    #: capture); its other free variables are the original function's closure.
    cell_names: tuple[str, ...] = ()

    @cached_property
    def source(self) -> str:
        """The compiled function as readable source (rendered on demand)."""
        return cst.Module(body=[self.compiled]).code


def _strip_params(params: cst.Parameters) -> cst.Parameters:
    """The signature without annotations and with placeholder defaults (real ones are copied)."""

    def strip(param: cst.Param) -> cst.Param:
        default = cst.Name("None") if param.default is not None else None
        return param.with_changes(annotation=None, default=default)

    star_arg = params.star_arg
    if isinstance(star_arg, cst.Param):
        star_arg = strip(star_arg)
    return params.with_changes(
        posonly_params=[strip(p) for p in params.posonly_params],
        params=[strip(p) for p in params.params],
        star_arg=star_arg,
        kwonly_params=[strip(p) for p in params.kwonly_params],
        star_kwarg=strip(params.star_kwarg) if params.star_kwarg is not None else None,
    )


class EmitPass:
    """Renders, re-lines and compiles (module docstring)."""

    def __init__(self, context: CompileContext) -> None:
        self.context = context

    def run(
        self,
        compiled: cst.FunctionDef,
        original: cst.FunctionDef,
        free_names: tuple[str, ...],
    ) -> Emitted:
        inner = compiled.with_changes(name=cst.Name(_COMPILED))
        self.context.origins[inner] = self.context.origins.get(compiled, self.context.first_line)
        cell_names = tuple(sorted(self.context.captured))
        factory = cst.FunctionDef(
            name=cst.Name(_FACTORY),
            params=cst.Parameters(
                params=[cst.Param(cst.Name(n)) for n in (*free_names, *cell_names)]
            ),
            body=cst.IndentedBlock(
                [inner, cst.SimpleStatementLine([cst.Return(cst.Name(_COMPILED))])]
            ),
        )
        names = parameter_names(original.params)
        result = cst.Tuple([cst.Element(cst.Name(n)) for n in names]) if names else cst.Tuple([])
        binder = cst.FunctionDef(
            name=cst.Name(_BINDER),
            params=_strip_params(original.params),
            body=cst.IndentedBlock([cst.SimpleStatementLine([cst.Return(result)])]),
        )
        module = cst.Module(body=[factory, binder])
        source = module.code
        tree = ast.parse(source, filename=self.context.filename)
        self._relocate(module, tree)
        module_code = compile(
            tree,
            self.context.filename,
            "exec",
            flags=self.context.future_flags,
            dont_inherit=True,
        )
        factory_code = _find_code(module_code, _FACTORY)
        name = original.name.value
        code = _requalify(
            _find_code(factory_code, _COMPILED),
            f"{_FACTORY}.<locals>.{_COMPILED}",
            self.context.qualname,
        ).replace(co_name=name)
        binder_code = _find_code(module_code, _BINDER).replace(
            co_name=name, co_qualname=self.context.qualname
        )
        return Emitted(compiled=compiled, code=code, binder_code=binder_code, cell_names=cell_names)

    def _relocate(self, module: cst.Module, tree: ast.Module) -> None:
        """Give every node the user's line; a node spans that whole line, so no carets lie."""
        filename = self.context.filename
        lines = {
            id(ast_node): self.context.origins[node]
            for node, ast_node in pair_statements(module.body, tree.body)
            if node in self.context.origins
        }

        extents: dict[int, tuple[int, int]] = {}

        def extent(line: int) -> tuple[int, int]:
            found = extents.get(line)
            if found is None:
                text = linecache.getline(filename, line).rstrip("\n")
                stripped = text.lstrip()
                start = len(text[: len(text) - len(stripped)].encode())
                found = extents[line] = (start, len(text.encode()) if text else start)
            return found

        # Iterative, and each node's fields read once: this walk covers every node.
        stack: list[tuple[ast.AST, int]] = [(tree, self.context.first_line)]
        while stack:
            node, current = stack.pop()
            current = lines.get(id(node), current)
            if hasattr(node, "lineno"):
                node.lineno = node.end_lineno = current
                node.col_offset, node.end_col_offset = extent(current)
            for field in node._fields:
                value = getattr(node, field, None)
                if isinstance(value, ast.AST):
                    stack.append((value, current))
                elif isinstance(value, list):
                    stack.extend((item, current) for item in value if isinstance(item, ast.AST))


def _find_code(code: types.CodeType, name: str) -> types.CodeType:
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType) and constant.co_name == name:
            return constant
    raise AssertionError(f"emit: no code object named {name!r}")


def _requalify(code: types.CodeType, old: str, new: str) -> types.CodeType:
    """`code` and the functions, lambdas and classes nested in it named as in the user's
    source (``main.<locals>.say``), not after the factory that compiled them."""
    constants = tuple(
        _requalify(constant, old, new) if isinstance(constant, types.CodeType) else constant
        for constant in code.co_consts
    )
    qualname = code.co_qualname
    if qualname == old or qualname.startswith(old + "."):
        qualname = new + qualname[len(old) :]
    return code.replace(co_consts=constants, co_qualname=qualname)
