"""Private names of a function defined in a class are mangled as CPython mangles them."""

from __future__ import annotations

import textwrap

import pytest

from durable.transform._mangle import enclosing_class, mangle_private_names


@pytest.mark.parametrize(
    ("qualname", "expected"),
    [
        ("main", None),
        ("main.<locals>.inner", None),
        ("Vault.reveal", "Vault"),
        ("Outer.Inner.run", "Inner"),
        ("main.<locals>.Local.run", "Local"),
        ("Vault.run.<locals>.helper", "Vault"),
    ],
)
def test_enclosing_class_is_the_innermost_class_of_the_qualified_name(qualname, expected):
    assert enclosing_class(qualname) == expected


METHOD = textwrap.dedent(
    """\
    async def run(self, __p, *, key=__DEFAULT):
        __x = self.__a + __p
        g(__k=__x)
        match self:
            case D(__m=__n):
                pass
        from os import path as __path
        class Inner:
            __y = 1
        def __nested():
            return __x, __dunder__
        return __x
    """
)


def constant(code, name: str):
    return next(c for c in code.co_consts if getattr(c, "co_name", None) == name)


def test_mangled_source_compiles_to_the_names_the_method_has_in_its_class():
    in_class = compile("class _Vault:\n" + textwrap.indent(METHOD, "    "), "<m>", "exec")
    original = constant(constant(in_class, "_Vault"), "run")
    rewritten = constant(compile(mangle_private_names(METHOD, "_Vault.run"), "<m>", "exec"), "run")
    assert rewritten.co_varnames == original.co_varnames
    assert rewritten.co_names == original.co_names
    assert rewritten.co_name == "run"


def test_functions_outside_classes_and_underscore_classes_are_left_alone():
    assert mangle_private_names(METHOD, "main") == METHOD
    assert mangle_private_names(METHOD, "__.run") == METHOD
