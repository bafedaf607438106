"""Private name mangling, spelled out in the source of a function defined in a class.

CPython rewrites every identifier ``__name`` (not ending in ``__``) used inside a class body
to ``_Class__name`` — attributes (``self.__token``), variables, parameters, nested function
names. The compiler compiles a method's source on its own, outside its class, where CPython
would not mangle, so ``self.__token`` would read another attribute than the original does.
The source is rewritten here the way CPython would compile it inside the class, before any
pass reads it; the code objects then hold the same names as the original's (its free
variables included).
"""

from __future__ import annotations

import libcst as cst


def enclosing_class(qualname: str) -> str | None:
    """The innermost class around the function named `qualname` (``Vault.reveal`` ->
    ``Vault``, ``main.<locals>.Local.run.<locals>.inner`` -> ``Local``), or None."""
    parts = qualname.split(".")
    found = None
    for part, following in zip(parts, parts[1:], strict=False):
        if part != "<locals>" and following != "<locals>":
            found = part
    return found


def mangled(name: str, class_name: str) -> str:
    """``name`` as CPython's ``_Py_Mangle`` spells it inside class `class_name`."""
    if not name.startswith("__") or name.endswith("__") or "." in name:
        return name
    stripped = class_name.lstrip("_")
    return f"_{stripped}{name}" if stripped else name


def mangle_private_names(source: str, qualname: str | None) -> str:
    """`source` (one function) with its private names mangled as inside its class."""
    class_name = enclosing_class(qualname or "")
    if class_name is None or not class_name.lstrip("_") or "__" not in source:
        return source
    module = cst.parse_module(source)
    function = next((s for s in module.body if isinstance(s, cst.FunctionDef)), None)
    if function is None:
        return source
    rewritten = function.with_changes(
        params=function.params.visit(_Mangler(class_name)),
        body=function.body.visit(_Mangler(class_name)),
    )
    if rewritten.deep_equals(function):
        return source
    return module.deep_replace(function, rewritten).code


class _Mangler(cst.CSTTransformer):
    """Mangles identifiers as CPython does: not keyword argument names, not class pattern
    keywords, not the module of ``from m import``; a nested class body mangles with its own
    name, which CPython does again when the compiled code is compiled."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name

    def leave_Name(self, original: cst.Name, updated: cst.Name) -> cst.Name:
        name = mangled(updated.value, self.class_name)
        return updated if name == updated.value else updated.with_changes(value=name)

    def leave_Arg(self, original: cst.Arg, updated: cst.Arg) -> cst.Arg:
        return updated.with_changes(keyword=original.keyword)

    def leave_MatchKeywordElement(
        self, original: cst.MatchKeywordElement, updated: cst.MatchKeywordElement
    ) -> cst.MatchKeywordElement:
        return updated.with_changes(key=original.key)

    def leave_ImportFrom(self, original: cst.ImportFrom, updated: cst.ImportFrom) -> cst.ImportFrom:
        return updated.with_changes(module=original.module)

    def leave_ClassDef(self, original: cst.ClassDef, updated: cst.ClassDef) -> cst.ClassDef:
        return updated.with_changes(body=original.body)
