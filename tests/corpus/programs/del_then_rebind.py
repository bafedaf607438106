"""`del` of a local after a checkpoint, then the name bound again after another: the deleted
name is not live across the second checkpoint, and the new binding is; a `del` right after a
checkpoint needs its name saved there (it must be bound to be deleted)."""

from durable import PauseForEventException

TRACE = []
ARGS = (2,)
DURABLE = ("main",)


async def main(rounds):
    buffer = [1, 2]
    scratch = "unused after the pause, but deleted"
    raise PauseForEventException("filled")
    TRACE.append(("buffer", sum(buffer)))
    del buffer, scratch
    raise PauseForEventException("emptied")
    for i in range(rounds):
        buffer = [i] * 3
        raise PauseForEventException(f"refill-{i}")
        raise PauseForEventException(f"before-del-{i}")
        del buffer
    buffer = "last"
    raise PauseForEventException("last")
    return buffer
