"""The worker: a loop that finds the instances of a store that can make progress and runs them.

It owns polling (with backoff, and waking for timer deadlines), crash recovery of instances
whose runner died, a limit on concurrent runs, and a shutdown that leaves every run resumable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING, Any

from ._errors import (
    InstanceBusyError,
    LeaseLostError,
    PauseForEventException,
    RunStoppedError,
)
from .runtime.backend import runtime_for
from .runtime.operations import CANCEL_EVENT
from .runtime.runtime import COMPLETED, ENQUEUED, FAILED, RUNNING, SLEEPING, WAITING
from .stores.base import Claim, InstanceSummary

if TYPE_CHECKING:
    from .runtime.runtime import DurableRuntime

logger: logging.Logger = logging.getLogger("durable.worker")

#: Waits before running again an instance whose store write failed: doubled each time.
_WRITE_RETRY_FIRST = 1.0
_WRITE_RETRY_MAX = 60.0
#: Woken this long after a deadline, so the instance is due when the round looks at it.
_DEADLINE_SLACK = 0.005
#: The most instances one round asks an indexed store for (`due_instances`).
DUE_LIMIT = 1000
#: The most claimed-and-not-run instances a worker remembers to leave out of its claims.
_SKIPPED_MAX = 100_000


class Worker:
    """Runs the instances of `backend` that can make progress, at most `concurrency` at once.

    Each round finds the instances that can make progress and runs them
    (``DurableRuntime.resume_stored``):

    - ``running`` instances whose runner died (crash recovery), from their last write, first
      of all: a round tries each running instance's lease (taking it and giving it back at
      once) and takes over the free ones before any other work; one that a live runner
      holds is skipped quietly;
    - then, the longest untouched first, ``enqueued`` instances (saved by
      ``program.start``), from the start, and ``waiting`` instances whose awaited event is
      in their inbox, or whose deadline (an event timeout) has passed, and ``sleeping``
      instances whose sleep is over.

    Sleeping costs nothing: a durable ``sleep`` with more than `park_sleeps_after` seconds
    left parks its instance in the store (status ``sleeping``, with its wake-up time) and its
    run ends, giving back its slot, task and lease; the worker runs it again when it is due,
    and it resumes inside the sleep. Shorter sleeps sleep in their run.

    Finding them: a store that indexes its instances (one with ``due_instances(now, limit)``
    and ``next_wake_at(after)``, such as `SQLiteStateStore`) is asked for the due ones, and
    the worker reads the state of those only, to decide (an instance returned for an event of
    another name, or one that finished meanwhile, is skipped); its next deadline comes from
    ``next_wake_at``. The index lists running instances first, and the worker stops reading
    once it has an instance for each free slot, so a round costs the free slots (and the
    running instances ahead of them), not the whole backlog. Instances
    whose summary the store does not know (written before it had one) are read like the due
    ones and, when the worker does not run them, their summary is handed back with
    ``fill_summaries`` so later rounds skip them. Other stores are scanned: every round lists
    their instances and reads each one not seen completed or failed.

    A store that claims (one with ``claim_due``, such as `PostgresStateStore`) is asked
    instead to claim as many due instances as there are free slots, in one statement that
    takes their leases, running ones first; workers claiming at once get different ones
    (``FOR UPDATE SKIP LOCKED``), and those a live runner holds are never returned, so no
    lease is tried in vain. Each claim's lease becomes the lease of its run; a claimed
    instance the worker does not run after all (an event of another name in its inbox) is
    given back and left out of later claims until its store row changes.

    An index answers at most `DUE_LIMIT` instances, least recently written first, so a
    running instance of a crashed worker may lie past a long backlog of enqueued ones. When
    an answer is cut at the limit, the worker asks the store's ``running_instances(limit)``
    (ids of the running instances, least recently written first) when it has one, and tries
    those first; an index without it finds them once the backlog ahead has shrunk.

    Polling: after a round that finds nothing the worker sleeps `min_poll` seconds, doubling
    up to `max_poll`; work found, or a run ending, sets it back to `min_poll`. An event
    published (or an instance started) from another process is therefore seen within
    `max_poll` seconds, or at once over a store that announces them (one with
    ``watch(callback)``, such as `PostgresStateStore`, through LISTEN/NOTIFY). Deadlines are
    kept on time: when the earliest deadline of a waiting
    instance comes before the next poll, the worker sleeps only until it.

    Shutdown, when `stop` is set: no new work is taken; every run is asked to stop before its
    next durable operation (`DurableRuntime.request_stop`: the operation in progress finishes
    and is journaled); runs still going after `grace` seconds (a long ``sleep``, a slow side
    effect) are abandoned where they are and cancelled, as a crash there would leave them,
    without running the user's ``finally`` blocks. Their leases end with them, and the next
    worker resumes them from their last write.

    The worker drives the runtime of `backend` (``runtime_for(backend)``), so a stop applies
    to every run through that backend object: give the worker a backend of its own.
    """

    def __init__(
        self,
        backend: Any,
        *,
        concurrency: int = 8,
        min_poll: float = 0.05,
        max_poll: float = 1.0,
        grace: float = 10.0,
        park_sleeps_after: float = 1.0,
    ) -> None:
        if getattr(backend, "store", None) is None or not hasattr(backend, "pending_events"):
            raise TypeError(
                "Worker needs a DurableBackend (a backend over a store whose instances it can "
                f"list), got {backend!r}"
            )
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if not (_seconds(min_poll) and _seconds(max_poll) and 0 < min_poll <= max_poll):
            raise ValueError(
                "min_poll and max_poll must be seconds with 0 < min_poll <= max_poll, got "
                f"min_poll={min_poll!r}, max_poll={max_poll!r}"
            )
        if not _seconds(grace):
            raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
        if not _seconds(park_sleeps_after):
            raise ValueError(
                f"park_sleeps_after must be a number of seconds >= 0, got {park_sleeps_after!r}"
            )
        self.backend = backend
        self.runtime: DurableRuntime = runtime_for(backend)
        #: Sleeps with more than this left park their instance (status ``sleeping``).
        self.runtime.park_sleeps_after = float(park_sleeps_after)
        self.concurrency = concurrency
        self.min_poll: float = float(min_poll)
        self.max_poll: float = float(max_poll)
        self.grace: float = float(grace)
        #: instance id -> the task running it.
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._stopping = False
        #: Set when a run ends (a slot is free, a state changed): the next round starts now.
        self._wake = asyncio.Event()
        self._finished_work = False
        #: Set to end the grace period of a shutdown at once (see `hurry`).
        self._hurry = asyncio.Event()
        #: Instances seen completed or failed: not read again while the store lists them.
        self._done: set[str] = set()
        #: instance id -> its state's ``updated_at`` when running it failed in the runtime
        #: (not in the workflow, so nothing was recorded): skipped until its state changes.
        self._unrunnable: dict[str, Any] = {}
        #: instance id -> (when to try again, the wait after that) for instances whose last
        #: run stopped at a store write that failed (a full disk, a locked database): tried
        #: again after 1 s, then twice as long each time, up to `_WRITE_RETRY_MAX`.
        self._write_retries: dict[str, tuple[float, float]] = {}
        #: Running instances a live runner elsewhere held when last tried: tried again each
        #: round (that runner may die), but not counted as work found.
        self._busy: set[str] = set()
        #: instance id -> why its state could not be read (logged once, not every round).
        self._unreadable: dict[str, str] = {}
        store = backend.store
        due, wake = getattr(store, "due_instances", None), getattr(store, "next_wake_at", None)
        #: The store's index of instances (`due_instances`, `next_wake_at`), or None: scan.
        self._index = (due, wake) if callable(due) and callable(wake) else None
        #: What failed with the index -> why, logged once until it changes or works again.
        self._index_problems: dict[str, str] = {}
        #: Running instances past the index's limit (tried first by the round that found them).
        self._running_past_limit: list[str] = []
        #: Whether the store claims due instances itself (`claim_due`: leases taken for a
        #: batch in one statement), instead of being asked for them and each lease tried.
        self._claims = self._index is not None and callable(getattr(store, "claim_due", None))
        #: instance id -> the mark of its last claim, for claimed instances that were not
        #: run (waiting for another event, refused by the runtime...): left out of the next
        #: claims until the store sees them change (`_SKIPPED_MAX` at most).
        self._skipped: dict[str, tuple[Any, ...]] = {}

    def __repr__(self) -> str:
        return f"<Worker over {self.backend!r}: {len(self._tasks)}/{self.concurrency} running>"

    @property
    def running(self) -> list[str]:
        """Ids of the instances this worker is running now."""
        return sorted(self._tasks)

    def hurry(self) -> None:
        """Cut the grace period of a shutdown short: abandon the runs still going now (the
        command line does this on a second SIGINT or SIGTERM)."""
        self._hurry.set()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Run instances until `stop` is set (forever without one), then shut down."""
        stop = stop if stop is not None else asyncio.Event()
        self._stopping = False
        self._tasks = {}
        self._slots = asyncio.Semaphore(self.concurrency)
        self._wake = asyncio.Event()
        self._hurry = asyncio.Event()
        self._running_past_limit = []
        logger.info(
            "worker started over %r: at most %d runs at a time, polling every %g to %g s, %s",
            self.backend.store,
            self.concurrency,
            self.min_poll,
            self.max_poll,
            "asking the store's index for due instances"
            if self._index is not None
            else "reading every instance each round",
        )
        # A store that announces new work (PostgreSQL's LISTEN/NOTIFY) wakes the next round
        # at once; polling stays, for what it does not announce and for lost notices.
        watch = getattr(self.backend.store, "watch", None)
        stop_watching = None
        if callable(watch):
            loop = asyncio.get_running_loop()
            stop_watching = watch(lambda: loop.call_soon_threadsafe(self._wake.set))
        try:
            await self._poll(stop)
            await self._shut_down()
        except BaseException:
            # Cancelled from outside (or a bug here): still leave every run resumable.
            self._stopping = True
            await self._abandon([task for task in self._tasks.values() if not task.done()])
            self._tasks.clear()
            raise
        finally:
            if stop_watching is not None:
                await asyncio.to_thread(stop_watching)
        logger.info("worker stopped")

    # -- polling ----------------------------------------------------------------------------
    async def _poll(self, stop: asyncio.Event) -> None:
        interval = self.min_poll
        while not stop.is_set():
            self._wake.clear()
            self._finished_work = False
            found, next_deadline = await self._round()
            if found:
                interval = self.min_poll
            delay = interval
            if next_deadline is not None:
                delay = min(delay, max(0.0, next_deadline - time.time()) + _DEADLINE_SLACK)
            await _wait_any(stop, self._wake, timeout=delay)
            if found or self._finished_work:
                interval = self.min_poll
            else:
                interval = min(interval * 2, self.max_poll)

    async def _round(self) -> tuple[bool, float | None]:
        """Start the runnable instances there are free slots for. Returns whether new work
        was found, and the earliest deadline of a waiting instance that was not started."""
        if self._slots.locked():
            return False, None  # every slot is taken: a run ending wakes the next round
        now = time.time()
        #: id -> its claim's mark, for the instances claimed this round (`_claims`).
        claimed: dict[str, tuple[Any, ...]] = {}
        if self._claims:
            claims = self._claim(now)
            if claims is None:
                return False, None
            claimed = {claim.instance_id: claim.mark for claim in claims}
            listed, present, complete = list(claimed), set(claimed), False
        elif self._index is not None:
            found = self._due(now)
            if found is None:
                return False, None
            listed, complete = found
            if not complete:
                self._look_past_the_limit()
            if self._running_past_limit:
                # Running instances past the limit (a crashed worker's): read with the rest.
                running = dict.fromkeys(self._running_past_limit)
                self._running_past_limit = []
                listed = [*running, *(i for i in listed if i not in running)]
            present = set(listed)
            # Finished instances are not due: nothing to remember about them.
            self._done.clear()
        else:
            try:
                listed = self.backend.store.list_instances()
            except Exception:
                logger.exception("cannot list the instances of %r", self.backend.store)
                return False, None
            present, complete = set(listed), True
            self._done &= present
        if complete:  # a list cut at the limit says nothing of the instances left out
            self._busy &= present
            for gone in [i for i in self._unrunnable if i not in present]:
                del self._unrunnable[gone]
        #: (0 for a running instance whose runner is gone, else 1; its last write; id; why;
        #: its state): orphans first, then the longest untouched.
        candidates: list[tuple[int, float, str, str, dict[str, Any]]] = []
        next_deadline: float | None = None
        #: Summaries of instances read and not run, for an index that did not know them.
        learned: dict[str, InstanceSummary] = {}
        #: An index lists running instances first: once the candidates fill the free slots,
        #: the rest wait for a later round (reading them now would only be read again).
        free = self.concurrency - len(self._tasks) if self._index is not None else None
        for instance_id in listed:
            if free is not None and len(candidates) >= free:
                break
            if instance_id in self._tasks or instance_id in self._done:
                continue
            state = self._read(instance_id)
            if state is None:
                continue
            status = state.get("status")
            if status != RUNNING:
                self._busy.discard(instance_id)
            if status in (COMPLETED, FAILED):
                if self._index is None:
                    self._done.add(instance_id)
                learned[instance_id] = InstanceSummary(status)
                continue
            updated = state.get("updated_at")
            retry = self._write_retries.get(instance_id)
            if retry is not None and retry[0] > now:
                next_deadline = retry[0] if next_deadline is None else min(next_deadline, retry[0])
                continue
            if instance_id in self._unrunnable:
                if self._unrunnable[instance_id] == updated:
                    continue
                del self._unrunnable[instance_id]
            rank = 1
            if status == ENQUEUED:
                reason = "started (enqueued)"
            elif status == RUNNING:
                if instance_id not in claimed and self._held_elsewhere(instance_id):
                    continue
                rank, reason = 0, "resumed (it was running: crash recovery, its runner is gone)"
            elif status == WAITING:
                event, deadline = state.get("waiting_for"), state.get("deadline")
                if deadline is not None and deadline <= now:
                    reason = f"resumed (its deadline for event {event!r} passed)"
                elif arrived := self._event_arrived(
                    instance_id, [*(state.get("waiting_events") or [event]), CANCEL_EVENT]
                ):
                    reason = f"resumed (event {arrived!r} arrived)"
                else:
                    if deadline is not None and (next_deadline is None or deadline < next_deadline):
                        next_deadline = deadline
                    learned[instance_id] = InstanceSummary(status, event, deadline)
                    continue
            elif status == SLEEPING:
                wake_at = state.get("deadline")
                if wake_at is None or wake_at <= now:
                    reason = "woken (its sleep is over)"
                elif self._event_arrived(instance_id, [CANCEL_EVENT]):
                    reason = "woken to be cancelled"
                else:
                    next_deadline = _earliest(next_deadline, wake_at)
                    learned[instance_id] = InstanceSummary(status, None, wake_at)
                    continue
            else:
                continue
            candidates.append((rank, updated or 0.0, instance_id, reason, state))
        if self._index is not None:
            self._fill(learned)
            next_deadline = _earliest(next_deadline, self._next_wake_at(now))
        candidates.sort(key=lambda candidate: candidate[:3])
        found = False
        for _, _, instance_id, reason, state in candidates:
            if self._slots.locked():
                break
            await self._slots.acquire()  # a free slot: returns at once
            self._tasks[instance_id] = asyncio.create_task(
                self._run_one(instance_id, reason, state, claimed=instance_id in claimed),
                name=f"durable instance {instance_id}",
            )
            found = found or instance_id not in self._busy
        for instance_id, mark in claimed.items():
            if instance_id not in self._tasks:
                self._give_back(instance_id, mark)
        return found, next_deadline

    def _held_elsewhere(self, instance_id: str) -> bool:
        """Whether a live runner holds the lease of the running instance `instance_id`: the
        lease is taken and given back at once to tell (a runner that died holds none), so a
        held one takes no slot and a free one (an orphan) is run before anything else."""
        try:
            holder = self.backend.acquire_instance(instance_id)
        except Exception as error:
            logger.error("cannot try the lease of instance %r: %s", instance_id, error)
            return True
        if holder is None:
            self.backend.release_instance(instance_id)
            self._busy.discard(instance_id)
            return False
        logger.log(
            logging.DEBUG if instance_id in self._busy else logging.INFO,
            "instance %r skipped: it is being run by another runner (%s)",
            instance_id,
            holder,
        )
        self._busy.add(instance_id)
        return True

    # -- a store that claims -----------------------------------------------------------------
    def _claim(self, now: float) -> list[Claim] | None:
        """Claim as many due instances as there are free slots (None when the store fails),
        leaving out those claimed before and not run, until they change, and those waiting
        to try a failed write again."""
        skip: dict[str, tuple[Any, ...] | None] = dict(self._skipped)
        for instance_id, (when, _) in self._write_retries.items():
            if when > now:
                skip[instance_id] = None
        free = self.concurrency - len(self._tasks)
        claims = self._ask_index(
            "cannot claim due instances of %r", self.backend.claim_due, now, free, skip
        )
        if claims is None:
            return None
        for claim in claims:
            self._skipped.pop(claim.instance_id, None)
        return claims

    def _give_back(self, instance_id: str, mark: tuple[Any, ...]) -> None:
        """Release the claim of `instance_id`, which this round did not run, and leave it out
        of later claims until it changes (a write, a newer event): an instance waiting for
        another event than the ones in its inbox is not claimed round after round."""
        try:
            self.backend.release_instance(instance_id)
        except Exception as error:
            logger.error(
                "cannot give back the claim of instance %r (its lease ends in %g s): %s",
                instance_id,
                getattr(self.backend.store, "lease_seconds", 0),
                error,
            )
        if instance_id in self._write_retries:
            return  # left out until its retry is due, then claimed again
        if len(self._skipped) >= _SKIPPED_MAX:
            # Deleted instances are never claimed again to drop out: start afresh.
            self._skipped.clear()
        self._skipped[instance_id] = mark

    # -- an indexed store -------------------------------------------------------------------
    def _due(self, now: float) -> tuple[list[str], bool] | None:
        """The ids the store's index says are due, and whether that is all of them."""
        due = self._ask_index("cannot ask %r for its due instances", self._index[0], now, DUE_LIMIT)
        if due is None:
            return None
        due = list(due)
        return due, len(due) < DUE_LIMIT

    def _look_past_the_limit(self) -> None:
        """The index's answer was cut at `DUE_LIMIT`: find the running instances past it,
        for this round to try first (see the class docstring)."""
        running = getattr(self.backend.store, "running_instances", None)
        if callable(running):
            found = self._ask_index("cannot ask %r for its running instances", running, DUE_LIMIT)
            self._running_past_limit = list(found or ())

    def _next_wake_at(self, now: float) -> float | None:
        return self._ask_index("cannot ask %r for its next wake-up time", self._index[1], now)

    def _ask_index(self, what: str, question: Any, *arguments: Any) -> Any:
        """`question(*arguments)` asked of the store's index; None when it fails, logged once
        (`what`) until it changes or works again."""
        try:
            answer = question(*arguments)
        except Exception as error:
            self._index_trouble(what, error)
            return None
        self._index_problems.pop(what, None)
        return answer

    def _fill(self, learned: dict[str, InstanceSummary]) -> None:
        """Hand the index the summaries it did not know (instances from an older file), so
        that later rounds skip the finished and the idle ones without reading them."""
        fill = getattr(self.backend.store, "fill_summaries", None)
        if not learned or fill is None:
            return
        try:
            filled = fill(learned)
        except Exception as error:
            self._index_trouble("cannot record instance summaries in %r", error)
            return
        if filled:
            logger.info(
                "recorded the status of %d instance(s) the index of %r did not know",
                len(filled),
                self.backend.store,
            )

    def _index_trouble(self, what: str, error: Exception) -> None:
        message = f"{type(error).__name__}: {error}"
        if self._index_problems.get(what) != message:
            self._index_problems[what] = message
            logger.error(what + ": %s", self.backend.store, message)

    def _read(self, instance_id: str) -> dict[str, Any] | None:
        try:
            state = self.backend.read_state(instance_id)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            if self._unreadable.get(instance_id) != message:
                self._unreadable[instance_id] = message
                logger.error("cannot read instance %r, skipping it: %s", instance_id, message)
            return None
        self._unreadable.pop(instance_id, None)
        return state

    def _event_arrived(self, instance_id: str, events: list[str | None]) -> str | None:
        """The first of `events` (what a waiting instance waits for) in its inbox, if any."""
        if not any(events):
            return None
        try:
            pending = {e.name for e in self.backend.pending_events(instance_id)}
        except Exception as error:
            logger.error("cannot read the events of instance %r: %s", instance_id, error)
            return None
        return next((event for event in events if event in pending), None)

    # -- one run ----------------------------------------------------------------------------
    async def _run_one(
        self, instance_id: str, reason: str, state: dict[str, Any], *, claimed: bool = False
    ) -> None:
        news = True  # whether the next round should come at once
        try:
            if self._stopping:
                news = False
                return
            quiet = instance_id in self._busy
            # The runtime logs what the run does (started, resumed, paused, completed,
            # failed) at INFO, one line each; why the worker took it is detail.
            logger.debug("instance %r taken: %s", instance_id, reason)
            try:
                await self.runtime.resume_stored(instance_id, state)
            except PauseForEventException:
                pass  # paused or sleeping: logged by the runtime
            except LeaseLostError as lost:
                # Frozen or cut off past its lease: another runner has the instance now.
                news = False
                logger.warning(
                    "instance %r lost to another runner; its run here is abandoned: %s",
                    instance_id,
                    lost,
                )
                return
            except InstanceBusyError as busy:
                news = False
                self._busy.add(instance_id)
                logger.log(
                    logging.DEBUG if quiet else logging.INFO,
                    "instance %r skipped: %s",
                    instance_id,
                    busy,
                )
                return
            except RunStoppedError:
                logger.info(
                    "instance %r stopped for shutdown; it resumes from its last write",
                    instance_id,
                )
            except asyncio.CancelledError:
                logger.warning(
                    "instance %r abandoned at shutdown (grace period over); it resumes from "
                    "its last write",
                    instance_id,
                )
                raise
            except Exception as error:
                if getattr(error, "durable_write_failed", False):
                    news = False
                    self._back_off(instance_id, error)
                    return
                state = self._read(instance_id)
                if state is not None and state.get("status") == FAILED:
                    logger.error(
                        "instance %r failed: %s: %s",
                        instance_id,
                        type(error).__name__,
                        error,
                        exc_info=error,
                    )
                else:
                    # The runtime refused to run it (its code cannot be imported, a state it
                    # cannot load...): nothing was recorded, so do not retry every round.
                    news = False
                    self._unrunnable[instance_id] = (
                        None if state is None else state.get("updated_at")
                    )
                    logger.error(
                        "instance %r could not be run, skipping it until its state changes: %s: %s",
                        instance_id,
                        type(error).__name__,
                        error,
                        exc_info=error,
                    )
            self._busy.discard(instance_id)
            if self._write_retries.pop(instance_id, None) is not None:
                logger.info("instance %r: the store writes again", instance_id)
        finally:
            if claimed:
                # A claim no run took over (stopping, or refused before its run began) ends
                # here, not when its lease expires; after a run it is gone already.
                with contextlib.suppress(Exception):
                    self.backend.release_instance(instance_id)
            self._tasks.pop(instance_id, None)
            self._slots.release()
            if news and not self._stopping:
                self._finished_work = True
                self._wake.set()

    def _back_off(self, instance_id: str, error: Exception) -> None:
        """A store write or read of the instance failed: say so once, and try again later, each
        time twice as late (the instance stays at its last good write meanwhile)."""
        retry = self._write_retries.get(instance_id)
        wait = _WRITE_RETRY_FIRST if retry is None else min(retry[1] * 2, _WRITE_RETRY_MAX)
        self._write_retries[instance_id] = (time.time() + wait, wait)
        logger.log(
            logging.ERROR if retry is None else logging.DEBUG,
            "instance %r: the store failed (%s: %s); it stays at its last good write, "
            "tried again in %g s, then less and less often (at most every %g s)",
            instance_id,
            type(error).__name__,
            error,
            wait,
            _WRITE_RETRY_MAX,
            exc_info=error if retry is None else None,
        )

    # -- shutdown ---------------------------------------------------------------------------
    async def _shut_down(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        if tasks:
            logger.info(
                "stopping: %d run(s) stop before their next durable operation; waiting up to %g s",
                len(tasks),
                self.grace,
            )
            self.runtime.request_stop()
            everything = asyncio.ensure_future(asyncio.wait(tasks))
            hurried = asyncio.ensure_future(self._hurry.wait())
            try:
                await asyncio.wait(
                    {everything, hurried},
                    timeout=self.grace,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                everything.cancel()
                hurried.cancel()
            await self._abandon([task for task in tasks if not task.done()])
        self._tasks.clear()

    async def _abandon(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Stop `tasks` where they are, as a crash would: the runtime is told first, so
        cancelling them runs none of the user's ``finally`` blocks."""
        if not tasks:
            return
        self.runtime.abandon()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_any(*events: asyncio.Event, timeout: float) -> bool:
    """Wait until one of `events` is set (True) or `timeout` seconds pass (False)."""
    if any(event.is_set() for event in events):
        return True
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return bool(done)


def _earliest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    return first if second is None else min(first, second)


def _seconds(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and value >= 0
        and math.isfinite(value)
    )
