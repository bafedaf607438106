"""Branches of asyncio.gather share one dict and one list from main: each mutates them after
its own pauses, and after every resume main and all branches still hold the same objects
(identity and contents), including an object one branch returns and another stored."""

import asyncio

from durable import PauseForEventException

TRACE = []
ARGS = (["x", "y", "z"],)
DURABLE = ("main",)


class Box:
    def __init__(self):
        self.items = []


async def worker(name, shared, log, box):
    raise PauseForEventException(f"start-{name}")
    shared[name] = len(log)
    log.append(name)
    box.items.append(name)
    raise PauseForEventException(f"mid-{name}")
    shared.setdefault("boxes", []).append(box)
    return box


async def main(names):
    shared = {}
    log = []
    box = Box()
    boxes = await asyncio.gather(*[worker(n, shared, log, box) for n in names])
    same = all(b is box for b in boxes) and all(b is box for b in shared["boxes"])
    raise PauseForEventException("joined")
    log.append("main")
    TRACE.append(("after", same, sorted(box.items), len(log), boxes[0] is shared["boxes"][-1]))
    return sorted(k for k in shared if k != "boxes"), sorted(log), len(shared["boxes"])
