"""obj.m(await f()): the method is looked up on a local object before the await and applied after resume."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


class Recorder:
    def __init__(self):
        self.items = []

    def add(self, *values):
        self.items.extend(values)
        return len(self.items)


async def f(value):
    TRACE.append(("f", value))
    raise PauseForEventException(f"f-{value}")
    return value


async def main():
    rec = Recorder()
    words = []
    n = rec.add(await f("a"))
    words.append(await f("b"))
    m = rec.add(n, await f("c"), len(words))
    joined = "-".join(await f(["x", "y"]))
    upper = (await f("low")).upper()
    return rec.items, words, n, m, joined, upper
