"""The loop variable keeps its last value after the loop (and its old value after an empty loop)."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    item = "before"
    for item in []:  # noqa: B007 - the empty loop leaves item alone
        raise PauseForEventException("never")
    TRACE.append(("after empty", item))
    for item in ["a", "b", "c"]:
        raise PauseForEventException(f"item-{item}")
        TRACE.append(("in loop", item))
    raise PauseForEventException("after")
    TRACE.append(("after loop", item))
    for index, item in enumerate("xy"):  # noqa: B007 - read after the loop
        pass
    raise PauseForEventException("after-plain")
    return item, index
