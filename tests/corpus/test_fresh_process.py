"""Helper, closure and fan-out programs resume in a new process at every store write, on disk and SQLite.

Each run of the chain is a forked child that imports the program afresh (nothing of the
instance is left in memory), makes one store write of its instance and dies right after it
(`os._exit`, no cleanup: its leases end with it), pauses at a wait point, or finishes. The
next child resumes from the store. The side effects of all children, in order, and the final
outcome must be those of the plain run.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from pathlib import Path

import pytest

from durable import (
    DiskStateStore,
    DurableBackend,
    PauseForEventException,
    SQLiteStateStore,
)
from tests.crashing import CountsWrites, SimulatedCrash, WriteCounter

from .harness import PROGRAMS, Outcome, comparable_trace, compiled_module, run_plain

#: Processes, crashes at every write, generated programs: left out of the fast subset.
pytestmark = pytest.mark.slow

#: Programs that keep state in process memory across calls, which a new process does not
#: have (the in-process differential test runs them).
IN_PROCESS_ONLY = {
    "closure_reconciler_lambda": "its ledger of charges is a module-level dict",
    "helper_params_kinds": "a mutable default argument accumulates across calls",
    "helper_decorator_wrapper": "its decorator counts calls in a module-level closure",
}
#: Programs whose helpers are undecorated (they say ``DURABLE = (...)``).
NAMES = sorted(
    path.stem
    for path in PROGRAMS.glob("*.py")
    if "\nDURABLE = " in path.read_text() and path.stem not in IN_PROCESS_ONLY
)

_STORES = {
    "disk": (DiskStateStore, lambda directory: directory / "state", {}),
    # One transaction per write: a child dies right after a write is durable, and the trace
    # must then hold each effect once. With group commit, a fan-out's other branches run
    # their steps while that write's transaction commits, and a step whose write was still
    # queued runs again after the crash, as a step may (at least once).
    "sqlite": (SQLiteStateStore, lambda directory: directory / "state.db", {"group_commit": False}),
}


class _CountsDurableWrites(CountsWrites):
    """Counts a write once it is durable: a group-committing store (SQLite) acknowledges it
    when its transaction commits, not when it is handed over."""

    def append_record(self, instance_id, record, summary=None):
        return self._when_durable(
            super(CountsWrites, self).append_record(instance_id, record, summary)
        )

    def replace_records(self, instance_id, records, summary=None):
        return self._when_durable(
            super(CountsWrites, self).replace_records(instance_id, records, summary)
        )

    def _when_durable(self, unsettled):
        if unsettled is None:
            self.counter.wrote()
            return None

        async def settled():
            await unsettled
            self.counter.wrote()

        return settled()


def _store(kind: str, directory: Path, counter: WriteCounter | None = None):
    base, where, options = _STORES[kind]
    if counter is None:
        return base(where(directory), **options)
    crashing = type(f"Crashing{base.__name__}", (_CountsDurableWrites, base), {})
    store = crashing(where(directory), **options)
    store.counter = counter
    return store


def _child(name: str, kind: str, directory: Path, report: Path, run: int) -> None:
    """One process of the chain: import the program, run or resume once, report, exit."""
    module = compiled_module(name)
    instance = f"fresh-{name}"
    status, value = "crashed", None

    async def once():
        # Every other child lives for two writes: a reconciled call that its reconciler
        # reports as not applied writes PENDING again first, and must get to its outcome.
        crash_after = 1 if run % 2 else 2
        backend = DurableBackend(_store(kind, directory, WriteCounter(crash_after=crash_after)))
        return await module.main(*module.ARGS, orchestration_backend=backend, instance_id=instance)

    try:
        value = asyncio.run(once())
        status = "returned"
    except SimulatedCrash:
        status = "crashed"
    except PauseForEventException as pause:
        DurableBackend(_store(kind, directory)).publish_event(
            instance, pause.event, f"payload of {pause.event}"
        )
        status = "paused"
    except Exception as error:  # the program's own failure is part of its behaviour
        status, value = "raised", f"{type(error).__name__}: {error}"
    report.write_bytes(pickle.dumps((status, value, list(module.TRACE))))


def _run_in_child(name: str, kind: str, directory: Path, run: int) -> tuple:
    report = directory / f"run-{run}.pickle"
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            _child(name, kind, directory, report, run)
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 3
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, f"{name}: child {run} failed"
    return pickle.loads(report.read_bytes())


def test_programs_with_helpers_are_in_the_corpus():
    assert len(NAMES) >= 10


@pytest.mark.skipif(not hasattr(os, "fork"), reason="forks children (POSIX)")
@pytest.mark.parametrize("kind", sorted(_STORES))
@pytest.mark.parametrize("name", NAMES)
def test_resumed_in_a_new_process_after_every_write_matches_plain_run(name, kind, tmp_path):
    expected = run_plain(name)
    trace: list = []
    for run in range(1, 400):
        status, value, run_trace = _run_in_child(name, kind, tmp_path, run)
        trace += run_trace
        if status in ("returned", "raised"):
            break
    else:
        raise AssertionError(f"{name} never finished")
    result, error = (value, None) if status == "returned" else (None, value)
    assert Outcome(result, error, comparable_trace(compiled_module(name), trace)) == expected
    assert run > 2, "the chain resumed at least once"
