"""The normalize pass: awaits move to statement level in Python's evaluation order."""

from __future__ import annotations

import pytest

from .passes import dedent, normalized

CASES = {
    "call arguments: callee, then arguments left to right": (
        """
        async def f():
            x = g(a(), await h())
        """,
        """
        _durable_t1 = g
        _durable_t2 = a()
        _durable_t3 = await h()
        x = _durable_t1(_durable_t2, _durable_t3)
        """,
    ),
    "augmented assignment reads its target before the await": (
        """
        async def f():
            x += await g()
        """,
        """
        _durable_t1 = x
        _durable_t2 = await g()
        _durable_t1 += _durable_t2
        x = _durable_t1
        """,
    ),
    "subscript augmented assignment snapshots container, key and old value": (
        """
        async def f(a, i):
            a[i] += await g()
        """,
        """
        _durable_t1 = a
        _durable_t2 = i
        _durable_t3 = _durable_t1[_durable_t2]
        _durable_t4 = await g()
        _durable_t3 += _durable_t4
        _durable_t1[_durable_t2] = _durable_t3
        """,
    ),
    "and short-circuits": (
        """
        async def f(a):
            y = a and await g()
        """,
        """
        _durable_t1 = a
        if _durable_t1:
            _durable_t2 = await g()
            _durable_t1 = _durable_t2
        y = _durable_t1
        """,
    ),
    "or short-circuits": (
        """
        async def f(a):
            y = a or await g()
        """,
        """
        _durable_t1 = a
        if not _durable_t1:
            _durable_t2 = await g()
            _durable_t1 = _durable_t2
        y = _durable_t1
        """,
    ),
    "conditional expression evaluates one side": (
        """
        async def f(c):
            z = await p() if c else q
        """,
        """
        if c:
            _durable_t2 = await p()
            _durable_t1 = _durable_t2
        else:
            _durable_t1 = q
        z = _durable_t1
        """,
    ),
    "await as a whole statement or assignment stays in place": (
        """
        async def f():
            await g()
            x = await h(1)
        """,
        """
        await g()
        x = await h(1)
        """,
    ),
    "return await": (
        """
        async def f():
            return await g()
        """,
        """
        _durable_t1 = await g()
        return _durable_t1
        """,
    ),
    "f-string parts before an await are formatted first": (
        """
        async def f(a):
            v = f"{a!r}{await g()}"
        """,
        """
        _durable_t1 = f"{a!r}"
        _durable_t2 = await g()
        v = f"{_durable_t1}{_durable_t2}"
        """,
    ),
    "starred argument is unpacked before a later await": (
        """
        async def f(xs):
            g(*xs, await h())
        """,
        """
        _durable_t1 = g
        _durable_t2 = [*xs]
        _durable_t3 = await h()
        _durable_t1(*_durable_t2, _durable_t3)
        """,
    ),
    "wait point becomes a pause checkpoint": (
        """
        async def f(n):
            raise PauseForEventException(f"e{n}")
        """,
        """
        await _durable_pause(f"e{n}")
        """,
    ),
    "while test with await is tested inside the loop": (
        """
        async def f():
            while await more():
                step()
        """,
        """
        while True:
            _durable_t1 = await more()
            _durable_t2 = _durable_t1
            if not _durable_t2:
                break
            step()
        """,
    ),
    "for with a checkpoint iterates a stored iterator": (
        """
        async def f(items):
            for a, b in items:
                await g(a, b)
        """,
        """
        _durable_it1 = _durable_f.iterate(items)
        for _durable_v2 in _durable_it1:
            a, b = _durable_v2
            await g(a, b)
        """,
    ),
    "for without a checkpoint is untouched": (
        """
        async def f(items):
            for a in items:
                total = a
        """,
        """
        for a in items:
            total = a
        """,
    ),
    "statements on one line are split": (
        """
        async def f():
            a = 1; await g(a); b = 2
        """,
        """
        a = 1
        await g(a)
        b = 2
        """,
    ),
    "awaits inside with blocks and async comprehensions stay native": (
        """
        async def f(xs, lock):
            ys = [await g(x) async for x in xs]
            async with lock:
                await h()
        """,
        """
        ys = [await g(x) async for x in xs]
        async with lock:
            await h()
        """,
    ),
    "comprehension with an await becomes a loop over a renamed variable": (
        """
        async def f(xs):
            ys = [await g(x) for x in xs if x]
        """,
        """
        _durable_t2 = []
        _durable_it3 = _durable_f.iterate(xs)
        for _durable_v4 in _durable_it3:
            _durable_x_1 = _durable_v4
            if _durable_x_1:
                _durable_t5 = _durable_t2.append
                _durable_t6 = await g(_durable_x_1)
                _durable_t5(_durable_t6)
        ys = _durable_t2
        """,
    ),
    "try with a checkpoint names each handled exception": (
        """
        async def f():
            try:
                await g()
            except (KeyError, ValueError) as error:
                log(error)
            except OSError:
                pass
        """,
        """
        try:
            await g()
        except (KeyError, ValueError) as _durable_exc1:
            error = _durable_exc1
            log(error)
            error = None
            del error
        except OSError as _durable_exc2:
            pass
        """,
    ),
    "return and break leaving a checkpointed finally are recorded first": (
        """
        async def f(items):
            for item in items:
                try:
                    if item:
                        break
                    return item
                finally:
                    await g()
        """,
        """
        _durable_it1 = _durable_f.iterate(items)
        for _durable_v2 in _durable_it1:
            item = _durable_v2
            try:
                if item:
                    _durable_pend3 = ('break',)
                    break
                _durable_t4 = item
                _durable_pend3 = ('return', _durable_t4)
                return _durable_t4
            finally:
                await g()
        """,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_normalize(case):
    before, after = CASES[case]
    assert normalized(before).strip() == dedent(after).strip()


def test_elif_with_await_in_test_becomes_else_if():
    text = normalized(
        """
        async def f(a):
            if a:
                x = 1
            elif await g():
                x = 2
        """
    )
    assert "else:" in text and "elif" not in text
