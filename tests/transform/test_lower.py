"""The lower pass: guards only where a resume must skip code; plain blocks stay plain."""

from __future__ import annotations

from durable import DurableAstTransformer


def compiled(source: str) -> str:
    return DurableAstTransformer().transform(source).code


def test_function_without_checkpoints_runs_its_body_unguarded():
    code = compiled(
        "async def f(n):\n"
        "    total = 0\n"
        "    for i in range(n):\n"
        "        total += i * i\n"
        "    return total\n"
    )
    # Only the argument binding is guarded; the loop is exactly the user's.
    assert code.count("_durable_rp") == 2
    assert "\n    for i in range(n):\n        total += i * i\n    return total\n" in code


def test_loop_without_checkpoint_is_guarded_once_outside_the_loop():
    code = compiled(
        "async def f(n):\n"
        "    total = 0\n"
        "    for i in range(n):\n"
        "        total += i\n"
        "    raise PauseForEventException('e')\n"
        "    return total\n"
    )
    assert (
        "    if not _durable_rp:\n        total = 0\n        for i in range(n):\n            total += i\n"
        in code
    )


def test_each_checkpoint_runs_at_or_resumes_its_number():
    code = compiled(
        "async def f():\n    a = await g()\n    raise PauseForEventException('e')\n    return a\n"
    )
    assert (
        "    if not _durable_rp or _durable_rp == 1:\n"
        "        _durable_step = _durable_f.at(1, g()) if not _durable_rp else _durable_f.resume(1)\n"
        "        _durable_rp = 0\n"
        "        a = await _durable_step\n"
    ) in code
    assert (
        "_durable_f.at(2, _durable_f.pause('e')) if not _durable_rp else _durable_f.resume(2)"
        in code
    )


def test_statements_after_a_checkpoint_join_its_block():
    code = compiled(
        "async def f():\n    a = await g()\n    b = a + 1\n    c = b * 2\n    return c\n"
    )
    assert (
        "        a = await _durable_step\n        b = a + 1\n        c = b * 2\n        return c\n"
        in code
    )
    assert "if not _durable_rp:" not in code  # no parameters to bind, no other guard


def test_branch_test_is_not_evaluated_when_resuming():
    code = compiled("async def f(x):\n    if x > 0:\n        await g()\n    return x\n")
    assert "if (_durable_rp == 1) if _durable_rp else (x > 0):" in code


def test_loop_test_is_not_evaluated_when_resuming_into_the_body():
    code = compiled("async def f(i):\n    while i < 3:\n        await g()\n        i += 1\n")
    assert "while (_durable_rp == 1) if _durable_rp else (i < 3):" in code


def test_prologue_restores_only_variables_live_at_some_checkpoint():
    code = compiled("async def f(a, b):\n    c = a\n    await g()\n    return c\n")
    assert "if 'c' in _durable_saved" in code
    assert "'a' in _durable_saved" not in code and "'b' in _durable_saved" not in code
    assert "(a, b) = _durable_f.arguments" in code
