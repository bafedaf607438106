"""An agent fans out to three tool helpers at once, each journaling its call and pausing for a
human answer; results come back in argument order whatever order the answers arrive in."""

import asyncio

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = (["search", "math", "mail"],)
DURABLE = ("main",)
TRACE_IN_ANY_ORDER = True


def call_tool(tool, step):
    TRACE.append(("tool", tool, step))
    return f"{tool}:{step}"


async def run_tool(tool):
    started = await durable_execute(call_tool, tool, "start")
    raise PauseForEventException(f"approve-{tool}")
    finished = await durable_execute(call_tool, tool, "finish")
    return started, finished


async def main(tools):
    plan = await durable_execute(call_tool, "planner", len(tools))
    results = await asyncio.gather(*[run_tool(tool) for tool in tools])
    summary = await durable_execute(call_tool, "summary", len(results))
    return plan, results, summary
