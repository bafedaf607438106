"""A mutable default shared by calls (the classic pitfall): each call sees the items appended by the earlier ones."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def remember(item, seen=[]):  # noqa: B006 - shared on purpose
    raise PauseForEventException(f"remember-{item}")
    seen.append(item)
    return list(seen)


async def main():
    first = await remember("a")
    second = await remember("b")
    TRACE.append((first, second))
    return first, second
