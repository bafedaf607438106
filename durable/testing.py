"""Crash testing for durable functions: run one in a child process, kill it at a store write.

Owns `run_workflow_process`, `crash_test` and the child entry ``python -m durable.testing``.
Both need POSIX (`DiskStateStore`, SIGKILL) and are refused elsewhere (`_require_posix`).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import inspect
import json
import os
import pickle
import queue
import random
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import cloudpickle

from .runtime.backend import DurableBackend
from .stores.base import InstanceSummary
from .stores.disk import DiskStateStore
from .stores.faults import ENVIRONMENT_VARIABLE, KINDS, FaultPlan
from .stores.locks import require_file_locks

__all__ = [
    "UNINTERRUPTED",
    "CrashPoint",
    "CrashReport",
    "HarnessError",
    "ProcessOutcome",
    "crash_test",
    "main",
    "run_workflow_process",
    "validate_target",
]

#: The line a child prints to report how the call ended (then base64 of a pickle).
OUTCOME_MARKER = "@@durable.testing outcome@@"
#: The line a child prints when it could not make the call at all (then a message).
ERROR_MARKER = "@@durable.testing error@@"
#: Exit status of a child that could not make the call (bad target, bad arguments).
_HARNESS_FAILURE = 3
#: The kind (with k=0) that `crash_test` passes to `check` for the uninterrupted run.
UNINTERRUPTED = "uninterrupted"

_IDENTIFIER = r"[A-Za-z_]\w*"
_TARGET = re.compile(rf"^{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*$")

#: The arguments of a run: a tuple, or a function of the run's directory returning one.
Args = Sequence[Any] | Callable[[Path], Sequence[Any]]
#: ``check(directory, k, kind)``: raises (e.g. AssertionError) when a run went wrong.
Check = Callable[[Path, int, str], object]


class HarnessError(RuntimeError):
    """The harness could not run the durable function at all: the target does not import,
    the arguments do not pickle, a child died without reporting, or a run timed out."""


# -- outcomes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessOutcome:
    """How one process running a durable function ended.

    ``status`` is ``"killed"`` (by SIGKILL, as at a fault point), ``"returned"`` (``value``
    is the result, ``value_repr`` its repr) or ``"raised"`` (``error_type`` is the
    exception's ``module.QualName``, ``error_message`` its ``str``, ``error`` the exception
    itself when it could be unpickled here, ``traceback`` as the child printed it).
    ``writes`` is how many store writes of the instance the process made (None if killed).
    """

    status: Literal["killed", "returned", "raised"]
    returncode: int
    value: Any = None
    value_repr: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error: BaseException | None = field(default=None, repr=False)
    traceback: str | None = field(default=None, repr=False)
    writes: int | None = None
    stdout: str = field(default="", repr=False)
    stderr: str = field(default="", repr=False)

    @property
    def killed(self) -> bool:
        return self.status == "killed"

    @property
    def returned(self) -> bool:
        return self.status == "returned"

    @property
    def raised(self) -> bool:
        return self.status == "raised"

    def same_as(self, other: ProcessOutcome) -> bool:
        """Whether both ended alike: equal values, or exceptions of the same type and
        message. A value that could not be unpickled here is compared by its repr."""
        if self.status != other.status:
            return False
        if self.status == "raised":
            return (self.error_type, self.error_message) == (other.error_type, other.error_message)
        if self.status == "returned":
            if self.value is None or other.value is None:
                return self.value_repr == other.value_repr
            try:
                return bool(self.value == other.value)
            except Exception:
                return self.value_repr == other.value_repr
        return True

    def describe(self) -> str:
        if self.status == "killed":
            return "was killed"
        if self.status == "returned":
            return f"returned {self.value_repr}"
        return f"raised {self.error_type}: {self.error_message}"


@dataclass(frozen=True)
class CrashPoint:
    """One passed crash point: the run in `directory` killed at store write `k` by fault
    `kind`, then resumed `resumes` times (each a new process) until it ended with `outcome`."""

    kind: str
    k: int
    directory: Path
    resumes: int
    outcome: ProcessOutcome


@dataclass(frozen=True)
class CrashReport:
    """What a passing `crash_test` did: the uninterrupted run (`baseline`, `writes` store
    writes), every crash point, how many processes it ran and how long it took."""

    target: str
    writes: int
    kinds: tuple[str, ...]
    baseline: ProcessOutcome
    points: tuple[CrashPoint, ...]
    processes: int
    seconds: float

    @property
    def crash_points(self) -> int:
        return len(self.points)

    def __str__(self) -> str:
        return (
            f"{self.target}: {self.writes} store writes; all {self.crash_points} crash points "
            f"({', '.join(self.kinds)}) resumed to the uninterrupted outcome; "
            f"{self.processes} processes in {self.seconds:.1f} s"
        )


# -- one run in a child process -------------------------------------------------------------
def validate_target(target: str) -> tuple[str, str]:
    """The module and the qualified name of a ``module:function`` target; ValueError for
    anything else."""
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ValueError(
            "target must have the form 'module:function', naming a durable function the "
            f"child process can import (e.g. 'myapp.flows:checkout'), got {target!r}"
        )
    module, _, qualname = target.partition(":")
    return module, qualname


def _validate_fault(fault: str | None) -> None:
    if fault is not None:
        FaultPlan(fault)  # ValueError naming the expected form


def _validate_compact_after(compact_after: int | None) -> None:
    if compact_after is not None and (not isinstance(compact_after, int) or compact_after < 1):
        raise ValueError(f"compact_after must be None or an int >= 1, got {compact_after!r}")


def _child_environment(fault: str | None) -> dict[str, str]:
    """This process's environment, with `fault` as the only fault point and this process's
    import path, so the child imports the target as this process would."""
    env = dict(os.environ)
    env.pop(ENVIRONMENT_VARIABLE, None)
    if fault is not None:
        env[ENVIRONMENT_VARIABLE] = fault
    paths = [os.path.abspath(path) if path else os.getcwd() for path in sys.path]
    inherited = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(paths + ([inherited] if inherited else []))
    return env


def _encode_arguments(target: str, args: Sequence[Any], kwargs: dict[str, Any] | None) -> str:
    try:
        payload = cloudpickle.dumps((tuple(args), dict(kwargs or {})))
    except Exception as error:
        raise HarnessError(f"the arguments for {target} cannot be pickled: {error}") from error
    return base64.b64encode(payload).decode("ascii")


def run_workflow_process(
    target: str,
    store_dir: str | os.PathLike[str],
    instance_id: str,
    args: Sequence[Any] = (),
    *,
    kwargs: dict[str, Any] | None = None,
    fault: str | None = None,
    timeout: float = 60,
    compact_after: int | None = None,
) -> ProcessOutcome:
    """Call the durable function `target` (``module:function``) once, in a new process
    (``python -m durable.testing run``), over ``DiskStateStore(store_dir)`` as instance
    `instance_id`.

    With `fault` (``before:K``, ``after:K`` or ``torn:K``) the process kills itself at its
    K-th store write (``DURABLE_FAULT``); without, no fault is set. A new instance starts
    with `args` and `kwargs`; an existing one resumes (pass its original arguments).
    `compact_after` is passed to the child's `DurableBackend` (compact the instance's log
    every that many records, to crash during compactions too).
    Returns how the process ended; raises `HarnessError` when it could not make the call
    (the target does not import, no outcome reported, `timeout` seconds passed).
    """
    _require_posix("run_workflow_process")
    validate_target(target)
    _validate_fault(fault)
    _validate_compact_after(compact_after)
    command = [
        sys.executable,
        "-m",
        "durable.testing",
        "run",
        target,
        "--store",
        os.fspath(store_dir),
        "--instance",
        instance_id,
        "--args",
        _encode_arguments(target, args, kwargs),
    ]
    if compact_after is not None:
        command += ["--compact-after", str(compact_after)]
    where = _where(target, instance_id, fault)
    try:
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=_child_environment(fault)
        )
    except subprocess.TimeoutExpired as error:
        raise HarnessError(f"{where} did not end within {timeout} s") from error
    return _read_outcome(where, finished.returncode, finished.stdout, finished.stderr)


def _where(target: str, instance_id: str, fault: str | None) -> str:
    return f"{target} (instance {instance_id!r}, fault {fault or 'none'})"


def _read_outcome(where: str, returncode: int, stdout: str, stderr: str) -> ProcessOutcome:
    if returncode == -signal.SIGKILL:
        return ProcessOutcome("killed", returncode, stdout=stdout, stderr=stderr)
    report = None
    kept = []
    for line in stdout.splitlines():
        if line.startswith(ERROR_MARKER):
            raise HarnessError(f"{where}: {line[len(ERROR_MARKER) :].strip()}")
        if line.startswith(OUTCOME_MARKER):
            report = line[len(OUTCOME_MARKER) :].strip()
        else:
            kept.append(line)
    if report is None or returncode != 0:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        raise HarnessError(
            f"{where}: the process exited with status {returncode} without reporting an "
            f"outcome; its stderr ends with:\n{tail}"
        )
    data = pickle.loads(base64.b64decode(report))
    common: dict[str, Any] = {
        "returncode": returncode,
        "writes": data["writes"],
        "stdout": "\n".join(kept),
        "stderr": stderr,
    }
    if data["status"] == "returned":
        return ProcessOutcome(
            "returned", value=_load(data["value"]), value_repr=data["value_repr"], **common
        )
    return ProcessOutcome(
        "raised",
        error_type=data["error_type"],
        error_message=data["error_message"],
        error=_load(data["error"]),
        traceback=data["traceback"],
        **common,
    )


def _load(blob: bytes | None) -> Any:
    if blob is None:
        return None
    try:
        return cloudpickle.loads(blob)
    except Exception:
        return None


def _dump(value: Any) -> bytes | None:
    try:
        return cloudpickle.dumps(value)
    except Exception:
        return None


# -- many runs: a fork server -----------------------------------------------------------------
class _ForkServer:
    """A process (``python -m durable.testing serve``) that imports the target once and forks
    a new process per run: each run starts from that freshly imported state, as a new
    ``python -m durable.testing run`` would, without paying the imports again."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._errors: IO[bytes] = tempfile.TemporaryFile()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "durable.testing", "serve", target],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
            env=_child_environment(None),
        )
        self._failure: str | None = None
        self._ready = False

    def _reply(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait()
            self._errors.seek(0)
            tail = "\n".join(
                self._errors.read().decode(errors="replace").strip().splitlines()[-20:]
            )
            self._failure = (
                f"the fork server for {self.target} exited with status {code}; its stderr "
                f"ends with:\n{tail}"
            )
            raise HarnessError(self._failure)
        return json.loads(line)

    def run(
        self,
        store_dir: Path,
        instance_id: str,
        encoded_args: str,
        fault: str | None,
        timeout: float,
        compact_after: int | None,
    ) -> ProcessOutcome:
        if self._failure is not None:
            raise HarnessError(self._failure)
        if not self._ready:
            hello = self._reply()
            if "error" in hello:
                self._failure = f"{self.target}: {hello['error']}"
                raise HarnessError(self._failure)
            self._ready = True
        request = {
            "store": os.fspath(store_dir),
            "instance": instance_id,
            "args": encoded_args,
            "fault": fault,
            "timeout": timeout,
            "compact_after": compact_after,
        }
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(request) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            pass  # the server has ended: reading its answer says why
        reply = self._reply()
        where = _where(self.target, instance_id, fault)
        if reply["timed_out"]:
            raise HarnessError(f"{where} did not end within {timeout} s")
        return _read_outcome(where, reply["returncode"], reply["stdout"], reply["stderr"])

    def close(self) -> None:
        if self._process.stdin is not None:
            try:
                self._process.stdin.close()
            except OSError:
                pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()


@contextmanager
def _runners(target: str, count: int, fork_server: bool) -> Iterator[Callable[..., ProcessOutcome]]:
    """A function making one run (in a new process), safe to call from `count` threads."""
    if not fork_server:

        def run_process(store_dir, instance_id, encoded_args, fault, timeout, compact_after):
            args, kwargs = cloudpickle.loads(base64.b64decode(encoded_args))
            return run_workflow_process(
                target,
                store_dir,
                instance_id,
                args,
                kwargs=kwargs,
                fault=fault,
                timeout=timeout,
                compact_after=compact_after,
            )

        yield run_process
        return
    servers = [_ForkServer(target) for _ in range(count)]
    idle: queue.Queue[_ForkServer] = queue.Queue()
    for server in servers:
        idle.put(server)

    def run_forked(store_dir, instance_id, encoded_args, fault, timeout, compact_after):
        server = idle.get()
        try:
            return server.run(store_dir, instance_id, encoded_args, fault, timeout, compact_after)
        finally:
            idle.put(server)

    try:
        yield run_forked
    finally:
        for server in servers:
            server.close()


def _require_posix(name: str) -> None:
    require_file_locks(
        f"durable.testing.{name} (its runs are killed with SIGKILL over a DiskStateStore)",
        "run crash tests on Linux or macOS (on Windows, under WSL)",
    )


# -- the crash test -------------------------------------------------------------------------
def crash_test(
    target: str,
    args: Args = (),
    *,
    store_root: str | os.PathLike[str],
    kwargs: dict[str, Any] | None = None,
    kinds: Sequence[str] = KINDS,
    check: Check | None = None,
    instance_id: str = "crash-test",
    workers: int | None = None,
    max_resumes: int = 3,
    timeout: float = 60,
    fork_server: bool | None = None,
    events: Sequence[tuple[str, Any]] = (),
    compact_after: int | None = None,
) -> CrashReport:
    """Kill the durable function `target` (``module:function``) at every store write,
    resume it in new processes, and check that it ends as an uninterrupted run does.

    1. An uninterrupted run (in ``store_root/uninterrupted``) gives the expected outcome
       and the number N of store writes. A second uninterrupted run, with fault point
       ``before:N+1``, must end alike without reaching write N+1 (N is deterministic).
    2. For each kind in `kinds` (``before``, ``after``, ``torn``) and each K in 1..N, in a
       fresh directory ``store_root/<kind>-<K>``: a run with ``DURABLE_FAULT=<kind>:<K>``
       must be killed (else the fault point never triggered); runs without a fault then
       resume it, at most `max_resumes`, until one ends; it must end as the uninterrupted
       run did: an equal value, or an exception of the same type and message.
    3. ``check(directory, k, kind)`` is called for every run directory once its run has
       ended (with k=0 and kind ``"uninterrupted"`` for the uninterrupted run); an
       exception it raises fails that crash point. Checks of different crash points may
       run at the same time, in threads of this process.

    `events` (``(name, payload)`` pairs) are published to the instance in each run's
    store before its first run, for functions that wait for them. `compact_after` is
    passed to the runs' `DurableBackend`: a small value puts compactions (whole-log
    rewrites) among the writes that crash.

    The store of a run is ``directory / "store"``. `args` is the argument tuple, or a
    function building it from the run's directory, so that files the workflow writes (a
    ledger of its side effects, say) are kept per run::

        crash_test(
            "myapp.flows:checkout",
            args=lambda run_dir: (str(run_dir / "ledger"), "order-7"),
            store_root=tmp_path,
            check=lambda run_dir, k, kind: assert_charged_once(run_dir / "ledger"),
        )

    Runs go `workers` at a time (default: the number of CPUs, at most 4). With
    `fork_server` (the default on Linux) a few server processes import the target once and
    fork a new process for each run; otherwise each run is a ``python -m durable.testing
    run`` process. Either way every run, and every resume, is a new process.

    Raises AssertionError naming the target, the kind and K of every crash point that
    failed, `HarnessError` when the uninterrupted run cannot be made; returns a
    `CrashReport` when every crash point passes.
    """
    _require_posix("crash_test")
    started = time.monotonic()
    validate_target(target)
    kinds = tuple(kinds)
    if not kinds or any(kind not in KINDS for kind in kinds):
        raise ValueError(f"kinds must be a non-empty sequence of {KINDS}, got {kinds!r}")
    if not isinstance(max_resumes, int) or max_resumes < 1:
        raise ValueError(f"max_resumes must be an int >= 1, got {max_resumes!r}")
    _validate_compact_after(compact_after)
    events = [(name, payload) for name, payload in events]
    if fork_server is None:
        fork_server = sys.platform.startswith("linux")
    count = max(1, workers if workers is not None else min(4, os.cpu_count() or 1))
    root = Path(store_root)
    root.mkdir(parents=True, exist_ok=True)
    processes = 0
    counting = threading.Lock()

    with _runners(target, count, fork_server) as make_run:

        def run(directory: Path, fault: str | None) -> ProcessOutcome:
            nonlocal processes
            with counting:
                processes += 1
            encoded = _encode_arguments(target, _arguments(args, directory), kwargs)
            return make_run(
                directory / "store", instance_id, encoded, fault, timeout, compact_after
            )

        def start(directory: Path, fault: str | None) -> ProcessOutcome:
            """The first run in a fresh `directory`, after its events are published."""
            _fresh(directory)
            if events:
                backend = DurableBackend(DiskStateStore(directory / "store"))
                for name, payload in events:
                    backend.publish_event(instance_id, name, payload)
            return run(directory, fault)

        baseline_dir = root / UNINTERRUPTED
        baseline = start(baseline_dir, None)
        if baseline.killed:
            raise HarnessError(f"{target}: the uninterrupted run was killed (no fault was set)")
        writes = baseline.writes or 0
        if writes == 0:
            raise HarnessError(f"{target}: the uninterrupted run made no store writes")
        if check is not None:
            try:
                check(baseline_dir, 0, UNINTERRUPTED)
            except Exception as error:
                raise AssertionError(
                    f"{target}: the check failed for the uninterrupted run: {_text(error)}"
                ) from error

        def probe() -> str | None:
            try:
                again = start(root / "probe", f"before:{writes + 1}")
            except HarnessError as error:
                return f"{target}, second uninterrupted run: {error}"
            if again.killed:
                return (
                    f"{target}: the uninterrupted run made {writes} store writes, but a second "
                    f"run reached write {writes + 1}: the number of writes is not deterministic"
                )
            if not again.same_as(baseline) or again.writes != writes:
                return (
                    f"{target}: a second uninterrupted run {again.describe()} after "
                    f"{again.writes} store writes, the first {baseline.describe()} after "
                    f"{writes}: the function is not deterministic"
                )
            return None

        def crash_point(kind: str, k: int) -> CrashPoint | str:
            name = f"{target}, crash {kind}:{k} (of {writes} writes)"
            directory = root / f"{kind}-{k}"
            resumes = 0
            try:
                outcome = start(directory, f"{kind}:{k}")
                if not outcome.killed:
                    return (
                        f"{name}: the fault point never triggered: the run {outcome.describe()} "
                        f"after {outcome.writes} store writes"
                    )
                while outcome.killed and resumes < max_resumes:
                    resumes += 1
                    outcome = run(directory, None)
            except HarnessError as error:
                return f"{name}: {error}"
            if outcome.killed:
                return f"{name}: still killed after {resumes} resumes without a fault"
            if not outcome.same_as(baseline):
                detail = f"\n{outcome.traceback.rstrip()}" if outcome.traceback else ""
                return (
                    f"{name}: resumed, the run {outcome.describe()}, but the uninterrupted run "
                    f"{baseline.describe()}{detail}"
                )
            if check is not None:
                try:
                    check(directory, k, kind)
                except Exception as error:
                    return f"{name}: the check failed: {_text(error)}"
            return CrashPoint(kind, k, directory, resumes, outcome)

        jobs = [(kind, k) for kind in kinds for k in range(1, writes + 1)]
        with ThreadPoolExecutor(max_workers=count) as pool:
            probed = pool.submit(probe)
            results = list(pool.map(lambda job: crash_point(*job), jobs))
            probe_failure = probed.result()

    failures = [probe_failure] if probe_failure is not None else []
    failures += [result for result in results if isinstance(result, str)]
    if failures:
        raise AssertionError(
            f"crash test of {target}: {len(failures)} failure(s) over {len(jobs)} crash points\n"
            + "\n".join(failures)
        )
    return CrashReport(
        target=target,
        writes=writes,
        kinds=kinds,
        baseline=baseline,
        points=tuple(result for result in results if isinstance(result, CrashPoint)),
        processes=processes,
        seconds=time.monotonic() - started,
    )


def _arguments(args: Args, directory: Path) -> tuple[Any, ...]:
    return tuple(args(directory)) if callable(args) else tuple(args)


def _fresh(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        raise HarnessError(
            f"{directory} already exists; give crash_test a store_root without earlier runs"
        ) from None
    return directory


def _text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


# -- the child side -------------------------------------------------------------------------
class _CountingDiskStateStore(DiskStateStore):
    """A `DiskStateStore` that counts its instance writes, numbered as its fault points."""

    writes = 0

    def append_record(
        self, instance_id: str, record: bytes, summary: InstanceSummary | None = None
    ) -> None:
        self.writes += 1
        super().append_record(instance_id, record, summary)

    def replace_records(
        self,
        instance_id: str,
        records: Sequence[bytes],
        summary: InstanceSummary | None = None,
    ) -> None:
        self.writes += 1
        super().replace_records(instance_id, records, summary)


def _resolve(target: str) -> Any:
    """The durable program `target` names (an ``async def`` function is made durable)."""
    from .runtime.program import DurableProgram, make_durable

    module_name, qualname = validate_target(target)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise HarnessError(
            f"cannot import module {module_name!r} of target {target!r}: {_text(error)}"
        ) from error
    value: Any = module
    for part in qualname.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise HarnessError(f"module {module_name!r} has no attribute {qualname!r}") from None
    if isinstance(value, DurableProgram):
        return value
    if inspect.iscoroutinefunction(value):
        return make_durable(value)
    raise HarnessError(
        f"{target} is a {type(value).__name__}, not a durable function; name an async def "
        "function (made durable with make_durable)"
    )


def _execute(
    program: Any,
    store_dir: str,
    instance_id: str,
    encoded_args: str,
    compact_after: int | None = None,
) -> int:
    """Call `program` once over a disk store and print its outcome line; the exit status."""
    try:
        args, kwargs = cloudpickle.loads(base64.b64decode(encoded_args))
    except Exception as error:
        print(f"{ERROR_MARKER} the arguments cannot be unpickled: {_text(error)}", flush=True)
        return _HARNESS_FAILURE
    store = _CountingDiskStateStore(store_dir)
    backend = (
        DurableBackend(store)
        if compact_after is None
        else DurableBackend(store, compact_after=compact_after)
    )

    async def call() -> Any:
        return await program(
            *args, orchestration_backend=backend, instance_id=instance_id, **kwargs
        )

    report: dict[str, Any]
    try:
        value = asyncio.run(call())
    except Exception as error:
        report = {
            "status": "raised",
            "error_type": f"{type(error).__module__}.{type(error).__qualname__}",
            "error_message": str(error),
            "error": _dump(error),
            "traceback": "".join(traceback.format_exception(error)),
        }
    else:
        report = {"status": "returned", "value": _dump(value), "value_repr": repr(value)}
    report["writes"] = store.writes
    sys.stdout.flush()
    print(f"{OUTCOME_MARKER} {base64.b64encode(pickle.dumps(report)).decode('ascii')}", flush=True)
    return 0


def _run_child(
    target: str, store_dir: str, instance_id: str, encoded_args: str, compact_after: int | None
) -> int:
    try:
        program = _resolve(target)
    except HarnessError as error:
        print(f"{ERROR_MARKER} {error}", flush=True)
        return _HARNESS_FAILURE
    return _execute(program, store_dir, instance_id, encoded_args, compact_after)


def _serve(target: str) -> int:
    """The fork server: import `target`, then fork one process per request line on stdin
    and answer each with a line on stdout (its exit status and output)."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the target's module prints cannot garble the answers
    try:
        program = _resolve(target)
    except HarnessError as error:
        channel.write(json.dumps({"error": str(error)}) + "\n")
        channel.flush()
        return _HARNESS_FAILURE
    channel.write(json.dumps({"ready": True}) + "\n")
    channel.flush()
    for line in sys.stdin:
        request = json.loads(line)
        channel.write(json.dumps(_fork_run(program, request, channel)) + "\n")
        channel.flush()
    return 0


def _fork_run(program: Any, request: dict[str, Any], channel: IO[str]) -> dict[str, Any]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the new process: never returns
            status = 70
            try:
                os.close(channel.fileno())
                nothing = os.open(os.devnull, os.O_RDONLY)
                os.dup2(nothing, 0)  # the requests on stdin are the server's, not the run's
                os.close(nothing)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                random.seed()
                os.environ.pop(ENVIRONMENT_VARIABLE, None)
                if request["fault"] is not None:
                    os.environ[ENVIRONMENT_VARIABLE] = request["fault"]
                status = _execute(
                    program,
                    request["store"],
                    request["instance"],
                    request["args"],
                    request["compact_after"],
                )
            except BaseException:
                traceback.print_exc()
            finally:
                try:
                    sys.stdout.flush()
                    sys.stderr.flush()
                finally:
                    os._exit(status)
        status, timed_out = _wait(pid, request["timeout"])
        out.seek(0)
        err.seek(0)
        return {
            "returncode": os.waitstatus_to_exitcode(status),
            "timed_out": timed_out,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    """Wait for the child `pid`, at most `timeout` seconds (then kill it): (wait status,
    whether it timed out)."""
    try:
        descriptor = os.pidfd_open(pid)
    except (AttributeError, OSError):
        descriptor = None
    if descriptor is not None:
        try:
            ready, _, _ = select.select([descriptor], [], [], timeout)
        finally:
            os.close(descriptor)
        timed_out = not ready
    else:
        deadline = time.monotonic() + timeout
        while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
            time.sleep(0.002)
        timed_out = time.monotonic() >= deadline
    if timed_out:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    return status, timed_out


def main(argv: Sequence[str] | None = None) -> int:
    """The child entry, ``python -m durable.testing run module:function --store DIR
    --instance ID [--args B64]``: call the durable function once over
    ``DiskStateStore(DIR)`` and print a line with the outcome marker and base64 of a pickle
    saying how it ended. ``--args`` is base64 of a cloudpickled ``(args, kwargs)`` pair.
    ``serve module:function`` runs the fork server `crash_test` uses."""
    parser = argparse.ArgumentParser(
        prog="python -m durable.testing",
        description="Run a durable function in this process, for durable.testing.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="call a durable function once and report its outcome")
    run.add_argument("target", help="module:function of the durable function")
    run.add_argument("--store", required=True, help="directory of the DiskStateStore")
    run.add_argument("--instance", required=True, help="instance id")
    run.add_argument("--args", help="base64 of a cloudpickled (args, kwargs) pair")
    run.add_argument("--compact-after", type=int, help="compact_after of the DurableBackend")
    serve = commands.add_parser("serve", help="fork one process per run read from stdin")
    serve.add_argument("target", help="module:function of the durable function")
    options = parser.parse_args(argv)
    if options.command == "serve":
        return _serve(options.target)
    encoded = options.args or base64.b64encode(cloudpickle.dumps(((), {}))).decode("ascii")
    return _run_child(
        options.target, options.store, options.instance, encoded, options.compact_after
    )


if __name__ == "__main__":
    from durable.testing import main as _main

    sys.exit(_main())
