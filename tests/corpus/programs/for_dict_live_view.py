"""A dict.items() loop sees a value updated mid-loop (dict iterators are live views), across a wait point."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    d = {"a": 1, "b": 2}
    for key, value in d.items():
        raise PauseForEventException(f"item-{key}")
        TRACE.append((key, value))
        d["b"] = 20
    return d
