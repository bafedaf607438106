"""A reminder a week later: `await sleep(7 * 24 * 3600)` in plain code, with no process
kept waiting for it.

    python examples/reminder.py demo                 # a two-second "week", with a worker

or step by step, each command a new process (the state is in reminder.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///reminder.db reminder
    python examples/reminder.py start r-1 ada "renew the passport"    # sleeping for a week
    python examples/reminder.py status r-1

The timer's deadline is journaled: a worker parks the sleeping instance in the store (status
`sleeping`), and whichever worker runs when the week is up sends the reminder, however often
workers were killed and started meanwhile. Sending is a step with a reconciler that asks the
outbox, so each message goes out once.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from durable import DurableBackend, NotApplied, make_durable, sleep, step
from durable.stores import store_from_url

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("REMINDER_STORE", "sqlite:///reminder.db")
OUTBOX = Path(os.environ.get("REMINDER_OUTBOX", "reminder-outbox.jsonl"))
WEEK = 7 * 24 * 3600


def outbox() -> list[dict]:
    lines = OUTBOX.read_text(encoding="utf-8").splitlines() if OUTBOX.exists() else []
    return [json.loads(line) for line in lines]


def already_sent(user: str, text: str) -> str:
    """The reconciler of `send`: was this message sent before a crash?"""
    if {"to": user, "text": text} in outbox():
        return f"sent to {user}"
    raise NotApplied


@step(reconciler=already_sent)
def send(user: str, text: str) -> str:
    """Stands for a mail or chat service: one fsynced line per message."""
    with OUTBOX.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"to": user, "text": text}) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return f"sent to {user}"


@make_durable
async def remind(user: str, text: str, after: float = WEEK) -> str:
    await send(user, f"I will remind you: {text}")
    await sleep(after)  # parked in the store; a restart waits only what is left
    return await send(user, f"Reminder: {text}")


def backend() -> DurableBackend:
    return DurableBackend(store_from_url(STORE_URL))


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("reminder").remind


async def start(reminder_id: str, user: str, text: str, after: float = WEEK) -> None:
    await workflow().start(user, text, after, instance_id=reminder_id,
                           orchestration_backend=backend())  # fmt: skip
    print(f"{reminder_id}: {user} is reminded to {text} in {after:g} s")


async def status(reminder_id: str, wait: float | None = None) -> None:
    handle = workflow().handle(reminder_id, orchestration_backend=backend())
    if wait is None:
        print(f"{reminder_id}: {handle.status()}")
    else:
        print(f"{reminder_id}: {await handle.result(timeout=wait)}")


async def demo() -> None:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", STORE_URL, "reminder"],
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.DEVNULL,
    )
    try:
        await start("r-1", "ada", "renew the passport", after=2)
        await status("r-1", wait=60)
        for message in outbox():
            print(f"outbox: {message['to']}: {message['text']}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main(argv: list[str]) -> None:
    if argv == ["demo"]:
        asyncio.run(demo())
    elif len(argv) == 4 and argv[0] == "start":
        asyncio.run(start(*argv[1:]))
    elif len(argv) == 2 and argv[0] == "status":
        asyncio.run(status(argv[1]))
    else:
        sys.exit("usage: python examples/reminder.py demo | start ID USER TEXT | status ID")


if __name__ == "__main__":
    main(sys.argv[1:])
