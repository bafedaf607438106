"""Nested functions of the durable function rebinding its variables with `nonlocal` (a
counter, a running total, a list rebound), two levels deep, called before and after
pauses: the frame and the closures still share each variable after a resume."""

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = (["a", "bb", "ccc"],)


def store(key, value):
    TRACE.append(("store", key, value))
    return value


async def main(words):
    count = 0
    total = 0
    seen = []

    def bump(word):
        nonlocal count, total
        count += 1
        total += len(word)
        return count

    def make_resetter():
        def reset():
            nonlocal seen, count
            old, seen = seen, []
            count = 0
            return old

        return reset

    reset = make_resetter()
    for word in words:
        n = bump(word)
        seen.append(word)
        raise PauseForEventException(f"word-{n}")
        await durable_execute(store, word, (count, total))
    before = reset()
    raise PauseForEventException("reset")
    seen.append("fresh")
    bump("zz")
    await durable_execute(store, "end", (count, total, tuple(seen)))
    return before, seen, count, total
