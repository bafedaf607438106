"""for over picklable user iterators (an iterator class and an iterable returning one), waits inside."""

from durable import PauseForEventException

TRACE = []
ARGS = (3,)


class Countdown:
    def __init__(self, start):
        self.current = start

    def __iter__(self):
        return self

    def __next__(self):
        if self.current <= 0:
            raise StopIteration
        self.current -= 1
        TRACE.append(("next", self.current + 1))
        return self.current + 1


class Bag:
    def __init__(self, items):
        self.items = list(items)

    def __iter__(self):
        return Countdown(len(self.items))


async def main(n):
    counter = Countdown(n)
    for value in counter:
        raise PauseForEventException(f"count-{value}")
        TRACE.append(("body", value, counter.current))
    got = []
    for index in Bag("xy"):
        raise PauseForEventException(f"bag-{index}")
        got.append(index)
    return got, counter.current
