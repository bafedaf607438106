"""Fan-out and fan-in: a thumbnail of every photo at once (asyncio.gather), a flaky service
retried with backoff (RetryPolicy), then one album published from all the results.

    python examples/fan_out.py demo                  # with a worker in a subprocess

or step by step, each command a new process (the state is in fan_out.db):

    PYTHONPATH=examples python -m durable worker --store sqlite:///fan_out.db fan_out
    python examples/fan_out.py start summer a.jpg b.jpg c.jpg
    python examples/fan_out.py status summer

The thumbnail service fails the first attempt for each photo (its attempts are counted in
the SQLite file fan_out-service.db, so the count outlives any process). Each failed attempt
is journaled with the time of the next one: `kill -9` of the worker while it backs off does
not repeat an attempt or restart the wait, and no photo is sent again once it succeeded.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

from durable import DurableBackend, RetryPolicy, make_durable, step
from durable.stores import store_from_url

HERE = Path(__file__).resolve().parent
STORE_URL = os.environ.get("FAN_OUT_STORE", "sqlite:///fan_out.db")
SERVICE = Path(os.environ.get("FAN_OUT_SERVICE", "fan_out-service.db"))
BACKOFF = float(os.environ.get("FAN_OUT_BACKOFF", "0.5"))


class ServiceTimeout(ConnectionError):
    """A transient failure of the thumbnail service: worth another attempt."""


def service() -> sqlite3.Connection:
    """The thumbnail service's own books: attempts per photo, and what it published."""
    db = sqlite3.connect(SERVICE, isolation_level=None)
    db.execute("CREATE TABLE IF NOT EXISTS attempts (photo TEXT PRIMARY KEY, count INTEGER)")
    db.execute("CREATE TABLE IF NOT EXISTS albums (album TEXT, photos INTEGER)")
    return db


@step(retry=RetryPolicy(max_attempts=3, initial_backoff=BACKOFF, retry_on=(ServiceTimeout,)))
def thumbnail(photo: str) -> str:
    with closing(service()) as db:
        db.execute(
            "INSERT INTO attempts VALUES (?, 1) ON CONFLICT DO UPDATE SET count = count + 1",
            (photo,),
        )
        (attempt,) = db.execute("SELECT count FROM attempts WHERE photo = ?", (photo,)).fetchone()
    if attempt == 1:
        raise ServiceTimeout(f"the thumbnail service timed out on {photo}")
    return f"thumb-{photo}"


@step
def publish(album: str, thumbnails: list[str]) -> str:
    with closing(service()) as db:
        db.execute("INSERT INTO albums VALUES (?, ?)", (album, len(thumbnails)))
    return f"https://photos.example/{album}"


@make_durable
async def make_album(album: str, photos: list[str]) -> dict:
    thumbnails = await asyncio.gather(*(thumbnail(photo) for photo in photos))
    link = await publish(album, thumbnails)
    return {"album": album, "thumbnails": thumbnails, "link": link}


def backend() -> DurableBackend:
    return DurableBackend(store_from_url(STORE_URL))


def workflow():
    """This module as the worker imports it (by name, not as __main__): one program key."""
    return importlib.import_module("fan_out").make_album


async def start(album: str, photos: list[str]) -> None:
    await workflow().start(album, photos, instance_id=album, orchestration_backend=backend())
    print(f"{album}: started, {len(photos)} photos")


async def status(album: str, wait: float | None = None) -> None:
    handle = workflow().handle(album, orchestration_backend=backend())
    if wait is None:
        print(f"{album}: {handle.status()}")
    else:
        print(f"{album}: {await handle.result(timeout=wait)}")


async def demo() -> None:
    path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    worker = subprocess.Popen(
        [sys.executable, "-m", "durable", "worker", "--store", STORE_URL, "fan_out"],
        env={**os.environ, "PYTHONPATH": path},
        stderr=subprocess.DEVNULL,
    )
    try:
        await start("summer", ["a.jpg", "b.jpg", "c.jpg"])
        await status("summer", wait=60)
        with closing(service()) as db:
            attempts = dict(db.execute("SELECT photo, count FROM attempts ORDER BY photo"))
        print(f"summer: attempts per photo {attempts}")
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def main(argv: list[str]) -> None:
    if argv == ["demo"]:
        asyncio.run(demo())
    elif len(argv) >= 3 and argv[0] == "start":
        asyncio.run(start(argv[1], argv[2:]))
    elif len(argv) == 2 and argv[0] == "status":
        asyncio.run(status(argv[1]))
    else:
        sys.exit("usage: python examples/fan_out.py demo | start ALBUM PHOTO... | status ALBUM")


if __name__ == "__main__":
    main(sys.argv[1:])
