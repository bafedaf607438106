"""try/except/else/finally and with blocks without checkpoints inside run natively between wait points."""

import contextlib

from durable import PauseForEventException

TRACE = []
ARGS = ("12", "oops")


@contextlib.contextmanager
def _scope(name):
    TRACE.append(("enter", name))
    yield name.upper()
    TRACE.append(("exit", name))


async def main(good, bad):
    raise PauseForEventException("start")
    try:
        value = int(good)
    except ValueError:
        value = -1
    else:
        TRACE.append("else ran")
    finally:
        TRACE.append("finally ran")
    raise PauseForEventException("middle")
    try:
        other = int(bad)
    except ValueError as error:
        other = str(error)
    with _scope("block") as label:
        TRACE.append(("inside", label))
    raise PauseForEventException("end")
    return value, other, label
