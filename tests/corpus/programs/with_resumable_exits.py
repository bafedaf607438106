"""Every way out of `with resumable(m)` runs `m.__exit__` once: return, break and continue,
before and after a pause, in sync and async blocks, nested, and through a helper."""

from durable import PauseForEventException, resumable

TRACE = []
ARGS = (4,)
DURABLE = ("main",)


class Lease:
    """Picklable; re-entering after a resume reopens quietly (not traced)."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        TRACE.append(("enter", self.name))
        return self.name

    def __durable_reenter__(self):
        return self.name

    def __exit__(self, kind, error, traceback):
        TRACE.append(("exit", self.name, kind.__name__ if kind else None))
        return False


class AsyncLease(Lease):
    async def __aenter__(self):
        return self.__enter__()

    async def __durable_reenter_async__(self):
        return self.__durable_reenter__()

    async def __aexit__(self, kind, error, traceback):
        return self.__exit__(kind, error, traceback)


async def first_free(names):
    for name in names:
        with resumable(Lease(f"probe-{name}")) as held:
            raise PauseForEventException(f"probe-{name}")
            if name.endswith("2"):
                return held  # out of the block and the loop, after a pause
    return None


async def main(rounds):
    for i in range(rounds):
        with resumable(Lease(f"loop-{i}")):
            if i == 0:
                continue  # before any pause
            raise PauseForEventException(f"tick-{i}")
            if i == 1:
                continue  # after a pause
            if i == 2:
                break
    async with resumable(AsyncLease("outer")) as outer:
        with resumable(Lease("inner")):
            raise PauseForEventException("nested")
            found = await first_free(["n1", "n2", "n3"])
            if found:
                return outer, found
    return "unreachable"
