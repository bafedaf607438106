"""Regression (COMPILER.md 3.6): locals that shadow module globals, or hold modules, survive resume."""

import json

from durable import PauseForEventException

TRACE = []
ARGS = ()
total = "module-level total"
codec = None


async def main():
    total = 0
    codec = json
    for value in (1, 2, 3):
        total += value
        raise PauseForEventException(f"value-{value}")
        TRACE.append(("running", total, codec.dumps([total])))
    import math as m

    raise PauseForEventException("math")
    TRACE.append(("module global untouched", globals()["total"]))
    return total, m.sqrt(total * total), codec.dumps({"t": total})
