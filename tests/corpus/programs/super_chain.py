"""Zero-argument super() chains through three classes of async methods that pause before
and after calling the parent's method; each level resumes in its own frame and super()
still finds the next class in the MRO."""

from durable import PauseForEventException

TRACE = []
ARGS = ("doc-1",)
DURABLE = ("main",)


class Reviewer:
    def __init__(self, name):
        self.name = name
        self.stamps = []

    async def review(self, doc):
        raise PauseForEventException(f"base-{doc}")
        self.stamps.append("base")
        return [self.name]


class Legal(Reviewer):
    async def review(self, doc):
        self.stamps.append("legal-start")
        raise PauseForEventException(f"legal-{doc}")
        signers = await super().review(doc)
        return signers + ["legal"]


class Board(Legal):
    def __init__(self, name, seats):
        super().__init__(name)
        self.seats = seats

    async def review(self, doc):
        signers = []
        for seat in range(self.seats):
            raise PauseForEventException(f"seat-{seat}")
            signers = await super().review(f"{doc}/{seat}")
        TRACE.append(("board", signers, list(self.stamps)))
        return signers + ["board"]


async def main(doc):
    board = Board("kim", 2)
    signers = await board.review(doc)
    raise PauseForEventException("publish")
    plain = await Legal("lee").review(doc + "-legal")
    return signers, plain, board.stamps
