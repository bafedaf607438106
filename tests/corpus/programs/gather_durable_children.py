"""Nested durable functions (decorated) fan out beside a helper and a journaled call; each
child pauses and keeps its own locals across the pause."""

import asyncio

from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = (3,)
DURABLE = ("main", "review")
TRACE_IN_ANY_ORDER = True


def note(*what):
    TRACE.append(what)
    return len(TRACE)


async def review(reviewer, pages):
    comments = [f"{reviewer} p{page}" for page in range(pages)]
    await durable_execute(note, "read", reviewer)
    raise PauseForEventException(f"done-{reviewer}")
    await durable_execute(note, "signed", reviewer, len(comments))
    return comments


async def count_words(pages):
    total = 0
    for page in range(pages):
        total += await durable_execute(note, "counted", page) * 0 + 100
    return total


async def main(pages):
    ann, bob, words, stamp = await asyncio.gather(
        review("ann", pages),
        review("bob", pages - 1),
        count_words(pages),
        durable_execute(note, "stamped"),
    )
    return ann, bob, words, stamp > 0
