"""An approval flow waits for the first of approve or reject, in a loop: a rejection asks for
a revision and waits again; the first of each round is journaled and its loser cancelled
(branches act only before they pause: a loser never gets past its wait)."""

import durable
from durable import PauseForEventException, durable_execute

TRACE = []
ARGS = ("REQ-9",)
DURABLE = ("main",)


def record(what, round_number):
    TRACE.append((what, round_number))
    return f"{what}#{round_number}"


async def approved(round_number):
    raise PauseForEventException(f"approve-{round_number}")
    return "approved"


async def rejected(round_number):
    asked = await durable_execute(record, "asked", round_number)
    raise PauseForEventException(f"reject-{round_number}")
    return f"rejected after {asked}"


async def main(request):
    history = []
    for round_number in range(4):
        if round_number < 2:
            which, note = await durable.first(rejected(round_number), approved(round_number))
            approved_now = which == 1
        else:
            which, note = await durable.first(approved(round_number), rejected(round_number))
            approved_now = which == 0
        history.append(await durable_execute(record, note, round_number))
        if approved_now:
            return request, "approved", history
    return request, "gave up", history
