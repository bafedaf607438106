"""A nested async def inside main that calls itself recursively (it captures its own name)
and appends to main's `seen` list; the recursion pauses at every node, and main reads `seen`
and a dict the closure fills after resume."""

from durable import PauseForEventException

TRACE = []
ARGS = ("a",)
DURABLE = ("main",)

GRAPH = {"a": ["b", "c"], "b": ["c", "d"], "c": ["a"], "d": []}


async def main(start):
    seen = []
    depth_of = {}

    async def crawl(node, depth):
        if node in depth_of:
            return 0
        depth_of[node] = depth
        raise PauseForEventException(f"fetch-{node}")
        seen.append(node)
        found = 1
        for nxt in GRAPH[node]:
            found += await crawl(nxt, depth + 1)
        TRACE.append(("crawled", node, found))
        return found

    total = await crawl(start, 0)
    raise PauseForEventException("report")
    TRACE.append(("order", list(seen)))
    again = await crawl("a", 0)
    return total, again, seen, sorted(depth_of.items())
