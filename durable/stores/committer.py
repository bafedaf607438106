"""Group commit: a thread that commits the writes coroutines hand it in shared transactions,
completing each write's future only after the COMMIT that holds it.

A store subclasses `GroupCommitter` with `commit(writes)`, which makes one transaction of
`writes` and says, per write, whether it failed (the SQLite and PostgreSQL stores do).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from abc import ABC, abstractmethod
from typing import Any

#: Writes one transaction takes at most, and how long the first of them waits for others
#: (only while writes arrive together).
BATCH = 256
WINDOW = 0.002


class CommitFuture(asyncio.Future[Any]):
    """The future of a write handed to a `GroupCommitter`, completed after the COMMIT that
    holds it. It cannot be cancelled: the write commits whatever its waiter does, so a task
    cancelled while it waits is told once its write has settled (awaiting it needs no
    `asyncio.shield`, which costs a second future and two callbacks a write)."""

    #: What the runtime reads to await it without a shield.
    cancellable = False

    def cancel(self, msg: Any = None) -> bool:
        return False


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread: a write made from it goes to the committer."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class GroupCommitter(ABC):
    """A thread committing the writes `submit` hands it.

    A write waits in the queue until the thread takes it, with every other write queued by
    then (up to `BATCH`), into one transaction; only after its COMMIT is each write's future
    completed, so no write is acknowledged before it is durable. A batch whose transaction
    fails is tried again one write per transaction, so that one bad write fails alone.
    """

    name = "durable-group-commit"

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: How many writes the batch being gathered waits for, and the signal that they came
        #: (one wake-up of this thread per batch, not one per write).
        self.expected: int = 1
        self.gathered: threading.Event = threading.Event()
        #: The process the thread runs in, and whether it has ended (read at every write:
        #: `Thread.is_alive` takes a lock, a tenth of a group-committed write's time).
        self.pid: int = os.getpid()
        self.ended: bool = False
        self.thread: threading.Thread = threading.Thread(
            target=self._run, name=self.name, daemon=True
        )
        self.thread.start()

    @abstractmethod
    def commit(self, writes: list[Any]) -> list[BaseException | None]:
        """Commit `writes` in one transaction; per write, its failure or None. Raising
        fails the transaction as a whole (each write is then tried alone)."""

    def alive(self) -> bool:
        """Whether the thread takes writes: it has not ended, and this is its process (a
        forked child has none of its parent's threads)."""
        return not self.ended and self.pid == os.getpid()

    def submit(self, loop: asyncio.AbstractEventLoop, write: Any) -> CommitFuture:
        """A future, of `loop`, that completes once `write` is committed (or fails)."""
        future = CommitFuture(loop=loop)
        self.queue.put((loop, future, write))
        gathered = self.gathered
        # Set once per batch: setting a set Event again takes its lock for nothing.
        if not gathered.is_set() and self.queue.qsize() + 1 >= self.expected:
            gathered.set()
        return future

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(timeout=30)

    def _run(self) -> None:
        try:
            self._take_batches()
        finally:
            self.ended = True

    def _take_batches(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            # The writers of the last batch were released together and usually write again
            # soon: wait (a moment at most) until as many have, then commit them together.
            # After a lone write, no wait.
            if self.expected > 1 and self.queue.qsize() + 1 < self.expected:
                self.gathered.wait(WINDOW)
            self.gathered.clear()
            batch = [first]
            while len(batch) < BATCH:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                batch.append(item)
            self.expected = max(1, len(batch) // 2)
            self._commit(batch)

    def _commit(self, batch: list[Any]) -> None:
        try:
            outcomes = self.commit([write for _, _, write in batch])
        except Exception as error:
            if len(batch) > 1:
                for item in batch:
                    self._commit([item])
                return
            outcomes = [error]
        _settle(batch, outcomes)


def _settle(batch: list[Any], outcomes: list[BaseException | None]) -> None:
    """Complete the futures of `batch` in their loops with `outcomes`: one callback per
    loop, so that a batch wakes each loop once."""
    by_loop: dict[Any, Any] = {}
    for (loop, future, _), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(loop, []).append((future, outcome))

    def complete(settled: list[Any]) -> None:
        for future, error in settled:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(complete, settled)
