"""with/async with resumable(...) around wait points: __exit__ runs once, on the real exit."""

from durable import PauseForEventException, resumable

TRACE = []
ARGS = ()


class _Session:
    """Picklable; re-entering after a resume reopens quietly (not traced)."""

    def __init__(self, name, suppress=False):
        self.name = name
        self.suppress = suppress
        self.opened = 0

    def __enter__(self):
        self.opened += 1
        TRACE.append(("enter", self.name))
        return f"{self.name}-handle"

    def __durable_reenter__(self):
        return f"{self.name}-handle"

    def __exit__(self, kind, error, traceback):
        TRACE.append(("exit", self.name, kind.__name__ if kind else None))
        return self.suppress


class _AsyncSession(_Session):
    async def __aenter__(self):
        return self.__enter__()

    async def __durable_reenter_async__(self):
        return self.__durable_reenter__()

    async def __aexit__(self, kind, error, traceback):
        return self.__exit__(kind, error, traceback)


async def main():
    with resumable(_Session("outer")) as outer, resumable(_Session("inner")) as inner:
        raise PauseForEventException("inside")
        TRACE.append(("using", outer, inner))
    with resumable(_Session("quiet", suppress=True)):
        raise PauseForEventException("before-error")
        raise ValueError("swallowed")
    try:
        with resumable(_Session("loud")) as loud:
            raise PauseForEventException("loud")
            raise KeyError(loud)
    except KeyError as error:
        TRACE.append(("escaped", str(error)))
    async with resumable(_AsyncSession("async")) as handle:
        raise PauseForEventException("async")
        TRACE.append(("async using", handle))
    return "done"
