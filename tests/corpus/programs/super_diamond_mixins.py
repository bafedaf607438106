"""super() through a diamond of mixins follows the MRO (D -> B -> C -> A) with wait points
at every level, inside try/finally, and through an async classmethod (super() bound to cls); the same method awaited through a bound-method variable."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
DURABLE = ("main",)


class A:
    @classmethod
    async def make(cls, tag):
        raise PauseForEventException(f"make-{tag}")
        return cls(), [tag]

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
    @classmethod
    async def make(cls, tag):
        obj, tags = await super().make(tag + "!")
        raise PauseForEventException("made")
        return obj, tags + [cls.__name__]

    async def run(self, path):
        first = await super().run(["D"])
        raise PauseForEventException("D-mid")
        second = await super(D, self).run(path)  # noqa: UP008 - on purpose
        return first, second


async def main():
    obj, tags = await D.make("d")
    TRACE.append(("made", type(obj).__name__, tags))
    runner = obj.run
    first, second = await runner(["start"])
    via_c = await C().run([])
    TRACE.append(("mro", [k.__name__ for k in D.__mro__]))
    return first, second, via_c
