"""The web side of the tutorial's app: HTTP handlers that submit, approve and show reports.

A small HTTP server on plain asyncio, so the tutorial needs no web framework; the handlers'
bodies are what a FastAPI or aiohttp handler would hold. ``python -m myapp.web --port 8000``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os

from durable import DurableBackend
from durable.stores import store_from_url

from .flows import expense_report

#: The store the worker runs: both processes must name the same one.
STORE = os.environ.get("DURABLE_STORE", "sqlite:///app.db")
backend = DurableBackend(store_from_url(STORE))


async def submit(body: dict) -> tuple[int, dict]:
    """POST /expenses: start an expense report; the worker runs it."""
    report_id = body["id"]
    await expense_report.start(
        report_id,
        body["employee"],
        float(body["amount"]),
        instance_id=report_id,
        orchestration_backend=backend,
    )
    return 202, {"report": report_id, "submitted": True}


async def decide(report_id: str, body: dict) -> tuple[int, dict]:
    """POST /expenses/<id>/approval: the manager's decision, as the event the report awaits."""
    decision = {"approved": bool(body["approved"]), "by": body["by"]}
    if expense_report.handle(report_id, orchestration_backend=backend).status() is None:
        return 404, {"error": f"no expense report {report_id!r}"}
    await backend.publish_event_async(report_id, "approval", decision)
    return 202, {"report": report_id, "decision": decision}


async def show(report_id: str) -> tuple[int, dict]:
    """GET /expenses/<id>: the report's status, and its outcome once it has one."""
    handle = expense_report.handle(report_id, orchestration_backend=backend)
    status = handle.status()
    if status is None:
        return 404, {"error": f"no expense report {report_id!r}"}
    answer = {"report": report_id, "status": status}
    if status == "completed":
        answer["outcome"] = await handle.result()
    return 200, answer


async def route(method: str, path: str, body: dict) -> tuple[int, dict]:
    parts = path.strip("/").split("/")
    if method == "POST" and parts == ["expenses"]:
        return await submit(body)
    if method == "POST" and len(parts) == 3 and parts[0] == "expenses" and parts[2] == "approval":
        return await decide(parts[1], body)
    if method == "GET" and len(parts) == 2 and parts[0] == "expenses":
        return await show(parts[1])
    return 404, {"error": f"no route for {method} {path}"}


async def serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One HTTP/1.1 request (a JSON body, if any) and its JSON answer; then the connection ends."""
    try:
        method, path, _ = (await reader.readline()).decode("latin-1").split(" ", 2)
        length = 0
        while (line := (await reader.readline()).decode("latin-1").strip()) != "":
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = json.loads(await reader.readexactly(length)) if length else {}
        code, answer = await route(method, path, body)
    except (ValueError, KeyError) as error:
        code, answer = 400, {"error": f"bad request: {error!r}"}
    data = json.dumps(answer).encode() + b"\n"
    reason = "OK" if code < 400 else "Error"
    head = f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + data)
    await writer.drain()
    writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(serve_one, "127.0.0.1", port)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    asyncio.run(main(parser.parse_args().port))
