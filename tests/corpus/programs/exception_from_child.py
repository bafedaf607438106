"""A nested durable call raises KeyError after its own wait point; it propagates out of main unchanged."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def lookup(table, key):
    raise PauseForEventException(f"lookup-{key}")
    TRACE.append(("lookup", key))
    return table[key]


async def main():
    table = {"a": 1}
    first = await lookup(table, "a")
    TRACE.append(("first", first))
    second = await lookup(table, "missing")
    TRACE.append(("unreachable", second))
    return second
