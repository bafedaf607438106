"""The liveness pass: checkpoints numbered in source order, only live variables saved."""

from __future__ import annotations

from .passes import liveness


def live(source: str) -> dict[int, tuple[str, ...]]:
    return {k: p.live for k, p in liveness(source).points.items()}


def test_checkpoints_are_numbered_in_source_order_with_lines():
    analysis = liveness(
        """
        async def f():
            await a()
            if x:
                await b()
            raise PauseForEventException("e")
        """
    )
    assert [(k, p.line) for k, p in sorted(analysis.points.items())] == [(1, 2), (2, 4), (3, 5)]


def test_dead_variables_are_not_saved():
    assert live(
        """
        async def f(a, b):
            c = a + b
            await g()
            return c
        """
    ) == {1: ("c",)}


def test_assigned_target_of_the_checkpoint_is_not_saved():
    assert live(
        """
        async def f(a):
            x = await g()
            return x + a
        """
    ) == {1: ("a",)}


def test_loop_carried_variables_are_live_at_a_checkpoint_in_the_body():
    assert live(
        """
        async def f(n):
            i = 0
            while i < n:
                await g()
                i += 1
            return i
        """
    ) == {1: ("i", "n")}


def test_for_iterator_is_live_inside_the_body():
    points = live(
        """
        async def f(items):
            total = 0
            for item in items:
                await g()
                total += item
            return total
        """
    )
    assert points == {1: ("_durable_it1", "item", "total")}


def test_variable_reassigned_before_use_is_dead():
    assert live(
        """
        async def f(a):
            await g()
            a = 1
            return a
        """
    ) == {1: ()}


def test_del_kills_a_variable():
    assert live(
        """
        async def f(a):
            b = a
            del a
            await g()
            return b
        """
    ) == {1: ("b",)}


def test_globals_are_never_saved():
    assert live(
        """
        async def f():
            await g()
            return CONSTANT + len([])
        """
    ) == {1: ()}


def test_names_used_only_as_keywords_or_attributes_are_not_live():
    assert live(
        """
        async def f(key, attr, obj):
            await g()
            return h(key=1, x=obj.attr)
        """
    ) == {1: ("obj",)}
