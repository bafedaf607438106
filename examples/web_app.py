"""A web app over durable: one handler starts an expense request, one approves it, one reads
it; a worker, a process of its own, runs the requests (plain asyncio, no web framework).

    python examples/web_app.py demo       # a worker, the server, and requests made to it

or each in a process of its own (the state is in web_app.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///web_app.db web_app &
    python examples/web_app.py serve 8000 &
    curl -X POST localhost:8000/requests -d '{"amount": 120}'          # {"id": "req-..."}
    curl -X POST localhost:8000/requests/req-.../approve -d '{"by": "ada"}'
    curl localhost:8000/requests/req-...                              # status and result

The server only starts instances, publishes events and reads statuses, so it answers at once
and holds no workflow in memory: `kill -9` the worker at any point and start it again, and
each approved request is paid once (the payment has a reconciler that asks the ledger).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from durable import DurableBackend, NotApplied, make_durable, step, wait_for_event
from durable.stores import store_from_url

STORE_URL = os.environ.get("WEB_APP_STORE", "sqlite:///web_app.db")
LEDGER = Path(os.environ.get("WEB_APP_LEDGER", "web_app-payments.jsonl"))
REASONS = {200: "OK", 201: "Created", 202: "Accepted", 400: "Bad Request", 404: "Not Found",
           409: "Conflict"}  # fmt: skip


def paid(request_id: str, amount: float, approver: str) -> str:
    """The reconciler of `pay`: did the payment go out before a crash?"""
    lines = LEDGER.read_text(encoding="utf-8").splitlines() if LEDGER.exists() else []
    if any(json.loads(line)["request"] == request_id for line in lines):
        return f"paid-{request_id}"
    raise NotApplied


@step(reconciler=paid)
def pay(request_id: str, amount: float, approver: str) -> str:
    with LEDGER.open("a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"request": request_id, "amount": amount, "by": approver}) + "\n")
        ledger.flush()
        os.fsync(ledger.fileno())
    return f"paid-{request_id}"


@make_durable
async def expense(request_id: str, amount: float) -> dict:
    approval = await wait_for_event("approve")
    receipt = await pay(request_id, amount, approval["by"])
    return {"amount": amount, "approved_by": approval["by"], "receipt": receipt}


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("web_app").expense


class App:
    def __init__(self) -> None:
        self.backend = DurableBackend(store_from_url(STORE_URL))

    async def route(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["requests"]:
            request_id = f"req-{uuid.uuid4().hex[:8]}"
            amount = float(body["amount"])
            await workflow().start(request_id, amount, instance_id=request_id,
                                   orchestration_backend=self.backend)  # fmt: skip
            return 201, {"id": request_id}
        if len(parts) < 2 or parts[0] != "requests":
            return 404, {"error": f"no route for {method} {path}"}
        handle = workflow().handle(parts[1], orchestration_backend=self.backend)
        status = await handle.status_async()
        if status is None:
            return 404, {"error": f"no request {parts[1]}"}
        if method == "GET" and len(parts) == 2:
            answer = {"id": parts[1], "status": status}
            if status == "completed":
                answer["result"] = await handle.result(timeout=0)
            return 200, answer
        if method == "POST" and parts[2:] == ["approve"]:
            if status in ("completed", "failed"):
                return 409, {"error": f"request {parts[1]} is already {status}"}
            approver = str(body["by"])
            await self.backend.publish_event_async(parts[1], "approve", {"by": approver})
            return 202, {"id": parts[1], "approved_by": approver}
        return 404, {"error": f"no route for {method} {path}"}

    async def serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        """One HTTP/1.1 request, one JSON answer, then the connection closes."""
        try:
            method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
            headers = {}
            while (line := await reader.readline()).strip():
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", 0)))
            code, answer = await self.route(method, path, json.loads(body) if body else {})
        except (ValueError, KeyError, TypeError) as error:
            code, answer = 400, {"error": f"bad request: {error!r}"}
        payload = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {code} {REASONS[code]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(App().serve_one, "127.0.0.1", port)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def call(method: str, url: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data, method=method)) as answer:
        return json.loads(answer.read())


def demo() -> None:
    here = str(Path(__file__).resolve().parent)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    }
    worker = subprocess.Popen([sys.executable, "-m", "durable", "worker", "--store", STORE_URL,
                               "web_app"], env=env, stderr=subprocess.DEVNULL)  # fmt: skip
    server = subprocess.Popen([sys.executable, __file__, "serve", "0"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        url = server.stdout.readline().split()[-1]
        request_id = call("POST", f"{url}/requests", {"amount": 120})["id"]
        print("started:", call("GET", f"{url}/requests/{request_id}")["status"])
        print(
            "approved by:",
            call("POST", f"{url}/requests/{request_id}/approve", {"by": "ada"})["approved_by"],
        )
        while (answer := call("GET", f"{url}/requests/{request_id}"))["status"] != "completed":
            time.sleep(0.1)
        print("done:", answer["result"])
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)


if __name__ == "__main__":
    if sys.argv[1:] == ["demo"]:
        demo()
    elif len(sys.argv) == 3 and sys.argv[1] == "serve" and sys.argv[2].isdigit():
        asyncio.run(serve(int(sys.argv[2])))
    else:
        sys.exit("usage: python examples/web_app.py demo | serve PORT (0: any free port)")
