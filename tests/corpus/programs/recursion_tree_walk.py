"""Recursive durable walk of a tree (nested tuples) with a wait point per node inside the loop over children."""

from durable import PauseForEventException

TRACE = []
ARGS = (("root", [("a", [("a1", []), ("a2", [])]), ("b", [])]),)


async def walk(node, depth):
    name, children = node
    TRACE.append(("pre", name, depth))
    total = 1
    for child in children:
        raise PauseForEventException(f"visit-{child[0]}")
        total += await walk(child, depth + 1)
    TRACE.append(("post", name, total))
    return total


async def main(tree):
    count = await walk(tree, 0)
    return count
