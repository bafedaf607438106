"""Differential harness: run a corpus program plain and compiled, crash and resume it.

A corpus program is a module in `programs/` with `async def main()` (plus any helpers) that
records its side effects with `TRACE.append(...)` (``TRACE_IN_ANY_ORDER = True`` compares
them sorted, for fan-outs); `DURABLE = ("main",)` makes only `main`
durable, so the other async functions run as undecorated helpers. The plain run executes the module with
every wait point (`raise PauseForEventException(...)`) removed. The compiled run wraps every
public `async def` of the module with `make_durable` and runs `main` over a `DiskStateStore`;
at each pause it publishes the awaited event and calls again through a *new* backend object
(and so a new runtime) over the same directory. A simulated crash right after store write k
stops the process's view of the run there; resuming then must reproduce the plain trace.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import sys
import types
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst

from durable import (
    DiskStateStore,
    DurableBackend,
    PauseForEventException,
    PostgresStateStore,
    make_durable,
)
from tests.crashing import CountsWrites, SimulatedCrash, StoreUnreachable, WriteCounter

PROGRAMS = Path(__file__).parent / "programs"


class CrashingStore(CountsWrites, DiskStateStore):
    """A disk store that 'dies' right after write number `counter.crash_after` of the run."""

    def __init__(self, path: Path, counter: WriteCounter) -> None:
        super().__init__(path)
        self.counter = counter


class CrashingPostgresStore(CountsWrites, PostgresStateStore):
    """The same over a schema of a PostgreSQL server (each write committed before it returns,
    so that a simulated crash leaves no write of the dead run still in flight)."""

    def __init__(self, dsn: str, schema: str, counter: WriteCounter) -> None:
        super().__init__(dsn, schema=schema, group_commit=False)
        self.counter = counter


@dataclass(frozen=True)
class Outcome:
    result: Any
    error: str | None
    trace: tuple

    @classmethod
    async def of(cls, module: types.ModuleType, call) -> Outcome:
        try:
            result, error = await call(), None
        except Exception as exc:  # the program's own failure is part of its behaviour
            result, error = None, f"{type(exc).__name__}: {exc}"
        return cls(result, error, comparable_trace(module, module.TRACE))


def comparable_trace(module: types.ModuleType, trace: list) -> tuple:
    """The trace as compared: in order, or sorted for a program whose branches run
    concurrently (``TRACE_IN_ANY_ORDER = True``: each effect once, in whatever interleaving
    the pauses and the store's commits give)."""
    if getattr(module, "TRACE_IN_ANY_ORDER", False):
        return tuple(sorted(trace, key=repr))
    return tuple(trace)


class _StripWaitPoints(cst.CSTTransformer):
    def leave_Raise(self, original: cst.Raise, updated: cst.Raise):
        exc = updated.exc
        if (
            isinstance(exc, cst.Call)
            and getattr(exc.func, "value", None) == "PauseForEventException"
        ):
            return cst.Pass()
        return updated


def plain_module(name: str, programs: Path = PROGRAMS) -> types.ModuleType:
    source = (programs / f"{name}.py").read_text()
    stripped = cst.parse_module(source).visit(_StripWaitPoints()).code
    module = types.ModuleType(f"corpus_plain_{name}")
    sys.modules[module.__name__] = module
    exec(compile(stripped, f"<plain {name}>", "exec", dont_inherit=True), module.__dict__)
    return module


def compiled_module(name: str, programs: Path = PROGRAMS) -> types.ModuleType:
    module_name = f"corpus_durable_{name}"
    spec = importlib.util.spec_from_file_location(module_name, programs / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    # `DURABLE = ("main",)` decorates only those: the other async functions are helpers,
    # which run as frames undecorated.
    decorated = getattr(module, "DURABLE", None)
    for attribute, value in list(vars(module).items()):
        if not inspect.iscoroutinefunction(value) or attribute.startswith("_"):
            continue
        if decorated is None or attribute in decorated:
            setattr(module, attribute, make_durable(value))
    return module


def _close(store) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def run_plain(name: str, programs: Path = PROGRAMS) -> Outcome:
    """Run program `name` (the file `programs/<name>.py`) with its wait points removed."""
    module = plain_module(name, programs)
    return asyncio.run(Outcome.of(module, lambda: module.main(*module.ARGS)))


def run_compiled(
    name: str,
    directory: Path,
    crash_after: int | None = None,
    programs: Path = PROGRAMS,
    postgres: str | None = None,
    fail_read: int | None = None,
    counter: WriteCounter | None = None,
    compact_after: int = 256,
) -> tuple[Outcome, int]:
    """Run to the end: publish each awaited event, resume after each crash. Returns writes.

    With `fail_read`, the store's read number `fail_read` (of records or events) fails once,
    as when its server restarts; the run must stop at its last write, marked as the store's
    failure, and the next call go on. `counter`, when given, counts the run's writes and
    reads (and takes `crash_after` and `fail_read` from the caller). `compact_after` is the
    backend's: 2 rewrites the log as one record at every other write.

    `directory` holds the run's state (with `postgres`, the conninfo of a server, the
    schema "corpus" of it does, under an instance id of this run's own); the program is the
    file `programs/<name>.py`.
    """
    module = compiled_module(name, programs)
    instance = "corpus-" + name
    if postgres is not None:
        instance += "-" + uuid.uuid4().hex[:12]
    if counter is None:
        counter = WriteCounter(crash_after, fail_read=fail_read)
    calls = 0
    schema = "corpus"

    def store(counted: bool):
        if postgres is not None:
            if counted:
                return CrashingPostgresStore(postgres, schema, counter)
            return PostgresStateStore(postgres, schema=schema, group_commit=False)
        return CrashingStore(directory, counter) if counted else DiskStateStore(directory)

    publisher: DurableBackend | None = None  # one for the run: events come from elsewhere

    async def drive() -> Any:
        nonlocal calls, publisher
        while True:
            calls += 1
            assert calls < 1000, "the program never finishes"
            backend = DurableBackend(store(counted=True), compact_after=compact_after)
            try:
                return await module.main(
                    *module.ARGS, orchestration_backend=backend, instance_id=instance
                )
            except PauseForEventException as pause:
                if publisher is None:
                    publisher = DurableBackend(store(counted=False))
                publisher.publish_event(instance, pause.event, f"payload of {pause.event}")
            except SimulatedCrash:
                pass
            except StoreUnreachable as unreachable:
                if not getattr(unreachable, "durable_write_failed", False):
                    raise  # the store's failure taken for the program's
            finally:
                _close(backend.store)

    try:
        outcome = asyncio.run(Outcome.of(module, drive))
    finally:
        if publisher is not None:
            _close(publisher.store)
    return outcome, counter.writes
