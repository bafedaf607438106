"""The emit pass: user line numbers in tracebacks, live closures, the original signature."""

from __future__ import annotations

import asyncio
import traceback

import pytest

from durable import DurableBackend, make_durable


@make_durable
async def fails_with_zero_division(x):
    y = x + 1
    return y / 0


def test_traceback_points_at_the_users_file_and_line():
    with pytest.raises(ZeroDivisionError) as caught:
        asyncio.run(fails_with_zero_division(1, orchestration_backend=DurableBackend()))
    last = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert last.filename == __file__
    with open(__file__) as source:
        expected_line = source.read().splitlines().index("    return y / 0") + 1
    assert last.lineno == expected_line
    assert last.line == "return y / 0"


def test_compiled_function_reads_closure_cells_live():
    scale = 2

    @make_durable
    async def scaled(x):
        return x * scale

    backend = DurableBackend()
    assert asyncio.run(scaled(3, orchestration_backend=backend, instance_id="a")) == 6
    scale = 5
    assert asyncio.run(scaled(3, orchestration_backend=backend, instance_id="b")) == 15


@make_durable
async def signature(a, /, b=2, *rest, c, d=[], **extra):  # noqa: B006
    return a, b, rest, c, d, extra


def test_arguments_bind_like_the_original_signature():
    backend = DurableBackend()
    result = asyncio.run(signature(1, c=3, orchestration_backend=backend, instance_id="s1"))
    assert result == (1, 2, (), 3, [], {})
    result = asyncio.run(
        signature(1, 5, 6, 7, c=3, d=4, e=5, orchestration_backend=backend, instance_id="s2")
    )
    assert result == (1, 5, (6, 7), 3, 4, {"e": 5})


def test_wrong_arguments_raise_the_same_type_error_as_the_original():
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'c'"):
        asyncio.run(signature(1, orchestration_backend=DurableBackend()))


def test_compiled_function_keeps_name_module_and_doc():
    @make_durable
    async def documented():
        """Says hello."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Says hello."
    assert documented.code.function.__qualname__.endswith("documented")
    assert documented.code.function.__module__ == __name__
