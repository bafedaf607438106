"""A recursive undecorated helper walks a tree, pausing at each node before and after its
children; each recursion level is its own frame and returns a tuple."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)

TREE = {"root": ["a", "b"], "a": ["a1"], "b": [], "a1": []}


async def visit(node, depth=0):
    raise PauseForEventException(f"enter-{node}")
    TRACE.append(("enter", node, depth))
    size, deepest = 1, depth
    for child in TREE[node]:
        child_size, child_deepest = await visit(child, depth + 1)
        size += child_size
        deepest = max(deepest, child_deepest)
    raise PauseForEventException(f"leave-{node}")
    TRACE.append(("leave", node, size))
    return size, deepest


async def countdown(n):
    if n == 0:
        return []
    raise PauseForEventException(f"count-{n}")
    return [n] + await countdown(n - 1)


async def main():
    size, deepest = await visit("root")
    steps = await countdown(3)
    return size, deepest, steps
