"""An LLM agent loop: the model picks tools, tools are steps, a risky tool waits for a human.

    python examples/agent_loop.py demo               # all of it, with a worker in a subprocess

or step by step, each command a new process (the state is in agent.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///agent.db agent_loop
    python examples/agent_loop.py start trip-1 "book me a flight to Lisbon"
    python examples/agent_loop.py approve trip-1 ada     # the booking needs a person's yes
    python examples/agent_loop.py status trip-1

The conversation is a plain list local that grows each turn; every model call and tool call
is journaled, so `kill -9` of the worker never asks the model again for a turn it answered,
and the booking (a step with a reconciler) is made once. The "model" is a deterministic
stand-in, so the example needs no network.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from durable import DurableBackend, NotApplied, durable_execute, make_durable, step, wait_for_event
from durable.stores import store_from_url

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("AGENT_STORE", "sqlite:///agent.db")
LEDGER = Path(os.environ.get("AGENT_LEDGER", "agent-ledger.jsonl"))


def record(kind: str, **fields) -> None:
    """What the outside world saw: one fsynced line per model call, search and booking."""
    with LEDGER.open("a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"kind": kind, **fields}) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())


def ledger() -> list[dict]:
    lines = LEDGER.read_text(encoding="utf-8").splitlines() if LEDGER.exists() else []
    return [json.loads(line) for line in lines]


def model(conversation: list[dict]) -> dict:
    """The stand-in LLM: reads the conversation, answers with a tool call or a final text."""
    record("model", turn=len(conversation))
    done = {m["tool"] for m in conversation if m["role"] == "tool"}
    if "search_flights" not in done:
        return {"role": "assistant", "tool": "search_flights", "args": {"to": "LIS"}}
    if "book_flight" not in done:
        cheapest = min(json.loads(conversation[-1]["content"]), key=lambda f: f["price"])
        return {"role": "assistant", "tool": "book_flight", "args": {"flight": cheapest["id"]}}
    return {"role": "assistant", "content": f"Done: {conversation[-1]['content']}"}


@step
def search_flights(to: str) -> str:
    record("search", to=to)
    return json.dumps([{"id": "TP1", "price": 210}, {"id": "FR7", "price": 95}])


def booked(flight: str) -> str:
    """The reconciler of `book_flight`: did the booking go through before a crash?"""
    for entry in ledger():
        if entry["kind"] == "booking" and entry["flight"] == flight:
            return f"booked {flight}"
    raise NotApplied


@step(reconciler=booked)
def book_flight(flight: str) -> str:
    record("booking", flight=flight)
    return f"booked {flight}"


TOOLS = {"search_flights": search_flights, "book_flight": book_flight}
NEEDS_APPROVAL = {"book_flight"}


@make_durable
async def agent(task: str) -> str:
    conversation = [{"role": "user", "content": task}]
    for _ in range(10):
        reply = await durable_execute(model, conversation)  # a model turn is never re-asked
        conversation.append(reply)
        if "tool" not in reply:
            return reply["content"]
        if reply["tool"] in NEEDS_APPROVAL:
            decision = await wait_for_event("approval")  # parked until a person answers
            if not decision["approved"]:
                conversation.append({"role": "tool", "tool": reply["tool"], "content": "refused"})
                continue
        result = await TOOLS[reply["tool"]](**reply["args"])
        conversation.append({"role": "tool", "tool": reply["tool"], "content": result})
    raise RuntimeError("the agent gave no answer in 10 turns")


def backend() -> DurableBackend:
    return DurableBackend(store_from_url(STORE_URL))


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("agent_loop").agent


def start_worker() -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "durable", "worker", "--store", STORE_URL, "agent_loop"]
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.Popen(command + ["--max-poll", "0.2"], env=env, stderr=subprocess.DEVNULL)


async def start(job: str, task: str) -> None:
    await workflow().start(task, instance_id=job, orchestration_backend=backend())
    print(f"{job}: started")


def approve(job: str, person: str, approved: bool = True) -> None:
    backend().publish_event(job, "approval", {"approved": approved, "by": person})
    print(f"{job}: {'approved' if approved else 'refused'} by {person}")


async def status(job: str, wait: float | None = None) -> None:
    handle = workflow().handle(job, orchestration_backend=backend())
    if wait is None:
        print(f"{job}: {handle.status()}")
    else:
        print(f"{job}: {await handle.result(timeout=wait)}")


async def demo() -> None:
    worker = start_worker()
    try:
        await start("trip-1", "book me the cheapest flight to Lisbon")
        handle = workflow().handle("trip-1", orchestration_backend=backend())
        while handle.status() != "waiting":
            await asyncio.sleep(0.05)
        print("trip-1: waiting for approval to book")
        approve("trip-1", "ada")
        await status("trip-1", wait=60)
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main(argv: list[str]) -> None:
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    if command == "demo" and not rest:
        asyncio.run(demo())
    elif command == "start" and len(rest) == 2:
        asyncio.run(start(*rest))
    elif command in ("approve", "refuse") and len(rest) == 2:
        approve(*rest, approved=command == "approve")
    elif command == "status" and len(rest) == 1:
        asyncio.run(status(rest[0]))
    else:
        sys.exit(
            "usage: python examples/agent_loop.py demo | start JOB TASK | "
            "approve JOB PERSON | refuse JOB PERSON | status JOB"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
