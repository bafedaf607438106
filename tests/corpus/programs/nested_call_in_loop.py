"""Nested durable calls inside for and while loops, mixed with wait points in the loop bodies."""

from durable import PauseForEventException

TRACE = []
ARGS = (["p", "q", "r"],)


async def process(item, index):
    TRACE.append(("process", item, index))
    raise PauseForEventException(f"process-{item}")
    return f"{item}{index}"


async def main(items):
    done = []
    for index, item in enumerate(items):
        result = await process(item, index)
        raise PauseForEventException(f"loop-{index}")
        done.append(result)
    retries = 0
    while retries < 2:
        retries += 1
        done.append(await process("retry", retries))
    return done
