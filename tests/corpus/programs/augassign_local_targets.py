"""x += await f(), lst[i] += await f(), obj.attr += await f(): the target is read before the await, as CPython does."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


class Box:
    def __init__(self):
        self.total = 1


async def bump(box, lst, value):
    box.total = 1000
    lst[1] = 1000
    TRACE.append(("bump", value))
    raise PauseForEventException(f"bump-{value}")
    return value


async def main():
    box = Box()
    lst = [0, 10, 20]
    x = 5
    x += await bump(box, lst, 1)
    i = 1
    lst[i] += await bump(box, lst, 2)
    box.total += await bump(box, lst, 3)
    words = ["a"]
    words += await bump(box, lst, ["b"])
    x *= await bump(box, lst, 3)
    return x, lst, box.total, words
