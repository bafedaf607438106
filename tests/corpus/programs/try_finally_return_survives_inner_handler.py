"""A return in flight survives an exception handled inside a finally it passes through.

Counterpart of try_finally_stale_return: here the handler is inside the inner finally, so
the return is not abandoned; and a second return is abandoned by an exception that a
handler inside the outer body catches, so the outer try then ends normally.
"""

from durable import PauseForEventException

TRACE = []
ARGS = ()


async def kept():
    try:
        try:
            return "kept"
        finally:
            try:
                raise KeyError("inner")
            except KeyError:
                TRACE.append("handled inside finally")
    finally:
        raise PauseForEventException("kept-outer")
    return "fell through"


async def abandoned():
    try:
        try:
            try:
                return "abandoned"
            finally:
                raise ValueError("replaces the return")
        except ValueError:
            TRACE.append("caught in the body")
        TRACE.append("body goes on")
    finally:
        raise PauseForEventException("abandoned-outer")
    return "ended normally"


async def main():
    return await kept(), await abandoned()
