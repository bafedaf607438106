"""An agent fans out to two tool helpers that yield to the event loop between their journaled
calls (a plain `await asyncio.sleep(0)`, as a client library would), beside a plain asyncio
coroutine: snapshots are skipped while a branch sits in a plain await, so a resume replays
both branches from an older snapshot, in another interleaving, and each takes back its own
journal entries."""

import asyncio

from durable import durable_execute

TRACE = []
ARGS = (3,)
DURABLE = ("main",)
TRACE_IN_ANY_ORDER = True


def call_tool(tool, step):
    TRACE.append((tool, step))
    return f"{tool}-{step}"


class Tool:
    def __init__(self, name, pauses):
        self.name = name
        self.pauses = pauses

    async def run(self, steps):
        outputs = []
        for step in range(steps):
            outputs.append(await durable_execute(call_tool, self.name, step))
            for _ in range(self.pauses):
                await asyncio.sleep(0)
        return outputs


async def main(steps):
    slow, fast = Tool("slow", 3), Tool("fast", 0)
    done, quick, tick = await asyncio.gather(
        slow.run(steps), fast.run(steps), asyncio.sleep(0, result="tick")
    )
    summary = await durable_execute(call_tool, "summary", len(done) + len(quick))
    return done, quick, tick, summary
