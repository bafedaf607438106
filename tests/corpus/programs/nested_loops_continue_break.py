"""continue and break in nested for/while loops, each placed after a wait point in the inner loop."""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def main():
    pairs = []
    for i in range(4):
        if i == 1:
            continue
        j = 0
        while True:
            j += 1
            raise PauseForEventException(f"inner-{i}-{j}")
            if j == 2:
                continue
            if j > i:
                break
            pairs.append((i, j))
        TRACE.append(("outer", i, j))
        if i == 2:
            raise PauseForEventException(f"outer-break-{i}")
            break
    return pairs
