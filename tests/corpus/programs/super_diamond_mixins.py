"""super() through a diamond of mixins follows the MRO (D -> B -> C -> A) with wait points
at every level, inside try/finally; the same method awaited through a bound-method variable."""
from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


class A:
    async def run(self, path):
        raise PauseForEventException(f"A-{len(path)}")
        return path + ["A"]


class B(A):
    async def run(self, path):
        try:
            raise PauseForEventException(f"B-{len(path)}")
            return await super().run(path + ["B"])
        finally:
            TRACE.append(("B-finally", len(path)))


class C(A):
    async def run(self, path):
        result = await super().run(path + ["C"])
        raise PauseForEventException(f"C-{len(path)}")
        return result


class D(B, C):
    async def run(self, path):
        first = await super().run(["D"])
        raise PauseForEventException("D-mid")
        second = await super(D, self).run(path)
        return first, second


async def main():
    runner = D().run
    first, second = await runner(["start"])
    via_c = await C().run([])
    TRACE.append(("mro", [k.__name__ for k in D.__mro__]))
    return first, second, via_c
