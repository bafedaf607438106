"""The analyze pass refuses what cannot be resumed: one test per error code, all at once."""

from __future__ import annotations

import pytest

from durable import DurableAstTransformer, DurableCompileError

from .passes import analyzed


def compile_errors(source: str) -> list:
    with pytest.raises(DurableCompileError) as caught:
        DurableAstTransformer(filename="example.py").transform(source)
    return caught.value.diagnostics


def only(source: str):
    (diagnostic,) = compile_errors(source)
    return diagnostic


def test_yield_is_refused_with_line_column_and_fix():
    d = only("async def f():\n    x = 1\n    yield x\n")
    assert (d.code, d.line, d.column) == ("DUR101", 3, 4)
    assert d.filename == "example.py"
    assert "list" in d.hint


def test_global_is_refused():
    assert only("async def f():\n    global g\n    g = 1\n").code == "DUR102"


def test_nonlocal_is_refused():
    assert only("async def f():\n    nonlocal g\n    g = 2\n").code == "DUR102"


@pytest.mark.parametrize(
    "call", ["locals()", "vars()", "eval('1')", "exec('x = 1')", "sys._getframe()"]
)
def test_frame_introspection_is_refused(call):
    d = only(f"async def f():\n    value = {call}\n    return value\n")
    assert d.code == "DUR103"
    assert (d.line, d.column) == (2, 12)


def test_vars_with_an_argument_is_allowed():
    analyzed("async def f(o):\n    return vars(o)\n")


def test_wait_point_inside_with_is_refused_naming_the_block_line():
    d = only("async def f(lock):\n    with lock:\n        raise PauseForEventException('e')\n")
    assert d.code == "DUR104"
    assert d.line == 3
    assert "line 2" in d.message


@pytest.mark.parametrize(
    "header", ["with open('x') as fh:", "async with lock:", "async for x in items:"]
)
def test_wait_point_inside_native_blocks_is_refused(header):
    source = (
        f"async def f(x, items, lock):\n    {header}\n        raise PauseForEventException('e')\n"
    )
    assert only(source).code == "DUR104"


def test_await_in_a_case_guard_is_refused():
    d = only("async def f(x):\n    match x:\n        case 1 if await ok():\n            pass\n")
    assert (d.code, d.line) == ("DUR110", 3)


def test_wait_point_inside_try_is_allowed():
    analyzed(
        "async def f():\n"
        "    try:\n"
        "        raise PauseForEventException('e')\n"
        "    except ValueError:\n"
        "        raise PauseForEventException('again')\n"
        "    finally:\n"
        "        raise PauseForEventException('last')\n"
    )


def test_computed_exception_type_of_a_handler_with_a_checkpoint_is_refused():
    d = only(
        "async def f(kinds):\n"
        "    try:\n"
        "        pass\n"
        "    except kinds[0]:\n"
        "        raise PauseForEventException('e')\n"
    )
    assert (d.code, d.line, d.column) == ("DUR105", 4, 11)


def test_checkpoint_inside_try_star_is_refused():
    d = only("async def f():\n    try:\n        await g()\n    except* ValueError:\n        pass\n")
    assert (d.code, d.line) == ("DUR108", 2)


def test_reserved_prefix_is_refused():
    assert only("async def f():\n    _durable_rp = 1\n    return 1\n").code == "DUR106"


def test_await_in_assignment_target_is_refused():
    assert only("async def f(a):\n    a[await k()] = 1\n").code == "DUR110"


def test_closure_over_variable_live_across_checkpoint_compiles_to_a_shared_cell():
    module = DurableAstTransformer().transform(
        "async def f():\n"
        "    x = 1\n"
        "    get = lambda: x\n"
        "    raise PauseForEventException('e')\n"
        "    return get() + x\n"
    )
    compiled = module.code
    assert "nonlocal x" in compiled
    assert "_durable_saved['x']" not in compiled  # a cell, saved whole, not a local


def test_captured_names_include_lambdas_inside_comprehensions():
    context, _ = analyzed(
        "async def f(xs):\n"
        "    k = 2\n"
        "    getters = [lambda: k for _ in xs]\n"
        "    total = sum(x * k for x in xs)\n"
        "    return getters, total\n"
    )
    assert set(context.captured) == {"k"}


def test_closure_over_variable_dead_at_checkpoints_is_allowed():
    DurableAstTransformer().transform(
        "async def f(items):\n"
        "    k = 2\n"
        "    items = sorted(items, key=lambda v: v * k)\n"
        "    raise PauseForEventException('e')\n"
        "    return items\n"
    )


def test_all_errors_of_a_function_are_reported_at_once():
    codes = [
        d.code
        for d in compile_errors("async def f():\n    global g\n    yield 1\n    return eval('2')\n")
    ]
    assert codes == ["DUR102", "DUR101", "DUR103"]


def test_compile_error_message_shows_file_line_source_and_fix():
    message = str(
        pytest.raises(
            DurableCompileError,
            DurableAstTransformer(filename="flow.py").transform,
            "async def f():\n    yield 1\n",
        ).value
    )
    assert "flow.py:2:5: DUR101" in message
    assert "yield 1" in message
    assert "fix:" in message


def test_awaits_in_native_blocks_are_allowed():
    analyzed(
        "async def f(client):\n"
        "    try:\n"
        "        r = await client.get()\n"
        "    except OSError:\n"
        "        r = None\n"
        "    async with client:\n"
        "        await client.ping()\n"
        "    return [await client.get(i) for i in range(3)]\n"
    )


def test_local_and_captured_names_come_from_the_symbol_table():
    context, _ = analyzed(
        "async def f(a, *rest, b=1, **kw):\n"
        "    import os\n"
        "    c = a\n"
        "    g = lambda: c\n"
        "    return os, g, glob\n"
    )
    assert {"a", "rest", "b", "kw", "os", "c", "g"} <= context.local_names
    assert "glob" not in context.local_names
    assert set(context.captured) == {"c"}


def test_asynchronous_generator_expression_is_refused():
    d = only("async def f(xs):\n    return sum(await g(x) for x in xs)\n")
    assert (d.code, d.line, d.column) == ("DUR112", 2, 15)


def test_every_error_code_the_compiler_emits_is_in_the_docs_table_with_an_example_and_a_fix():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    emitted = set()
    for path in (root / "durable" / "transform").glob("*.py"):
        emitted |= set(re.findall(r'"(DUR\d{3})"', path.read_text()))
    rows = {}
    for line in (root / "docs" / "compiler.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells and re.fullmatch(r"DUR\d{3}", cells[0]):
            rows[cells[0]] = cells
    assert emitted <= set(rows), f"missing from docs/compiler.md: {sorted(emitted - set(rows))}"
    for code, cells in rows.items():
        assert len(cells) == 4 and all(cells[1:]), f"{code}: refused, example and fix"
