"""Module globals are read live: a global rebound or mutated by a helper between checkpoints is seen after resume."""

from durable import PauseForEventException

TRACE = []
ARGS = ()
MODE = "start"
COUNTS = {"calls": 0}


def _set_mode(value):
    global MODE
    MODE = value


async def configure(value):
    raise PauseForEventException(f"configure-{value}")
    _set_mode(value)
    COUNTS["calls"] += 1


async def main():
    TRACE.append(("mode", MODE))
    raise PauseForEventException("first")
    _set_mode("plain")
    raise PauseForEventException("second")
    TRACE.append(("mode", MODE))
    await configure("nested")
    TRACE.append(("mode", MODE, COUNTS["calls"]))
    raise PauseForEventException("third")
    return MODE, COUNTS["calls"]
