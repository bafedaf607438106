"""Helper methods using private (name-mangled) names: `self.__secret` attributes, a
`self.__hidden()` method, a `__local` variable live across a pause, a nested function
closing over a private variable, and a class nested in a method (mangled by its own name)
all read what CPython's mangling names in the original."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


class Vault:
    def __init__(self):
        self.__secret = "s3"
        self.__count = 0

    async def reveal(self, __times=2):
        __local = self.__secret * __times
        raise PauseForEventException("reveal")
        self.__count += 1
        return __local, self.__count

    async def __hidden(self, n):
        raise PauseForEventException(f"hidden-{n}")
        return n + self.__count

    async def call_hidden(self):
        __base = 5

        def __plus(k):
            return __base + k

        got = await self.__hidden(__plus(1))
        raise PauseForEventException("called")

        class Inner:
            def __init__(self, base):
                self.__inner = base

            def names(self):
                return sorted(vars(self))

        return got, __plus(2), Inner(__base).names()


class Sub(Vault):
    async def peek(self):
        raise PauseForEventException("peek")
        self.__mine = "sub"
        return self._Vault__secret, hasattr(self, "_Sub__secret")


async def main():
    v = Sub()
    a = await v.reveal()
    b = await v.call_hidden()
    c = await v.peek()
    TRACE.append((a, b, c, sorted(vars(v))))
    return a
