"""Crash testing for durable functions: run one in a child process, kill it at a store write.

Owns `run_workflow_process`, `crash_test` and the child entry ``python -m durable.testing run``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib
import inspect
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cloudpickle

from .stores.disk import DiskStateStore
from .stores.faults import ENVIRONMENT_VARIABLE, KINDS, FaultPlan

__all__ = [
    "CrashPoint",
    "CrashReport",
    "HarnessError",
    "ProcessOutcome",
    "crash_test",
    "main",
    "run_workflow_process",
]

#: The line a child prints to report how the call ended (followed by base64 of a pickle).
OUTCOME_MARKER = "@@durable.testing outcome@@"
#: The line a child prints when it could not run the call at all (followed by a message).
ERROR_MARKER = "@@durable.testing error@@"
#: Exit status of a child that could not run the call (bad target, bad arguments).
_HARNESS_FAILURE = 3
#: Kind and K given to `check` for the uninterrupted run.
UNINTERRUPTED = "uninterrupted"

_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

Args = tuple[Any, ...] | Callable[[Path], tuple[Any, ...]]
Check = Callable[[Path, int, str], object]


class HarnessError(RuntimeError):
    """The harness could not run the durable function at all (import failure, bad arguments,
    a child that died without reporting, a timeout)."""


# -- outcomes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessOutcome:
    """How one child process running a durable function ended.

    ``status`` is ``"killed"`` (SIGKILL, as a fault point does), ``"returned"`` (``value``
    holds the result) or ``"raised"`` (``error_type`` is ``module.QualName`` of the
    exception, ``error_message`` its ``str``, ``error`` the exception itself when it could
    be unpickled here). ``writes`` is the number of instance writes the process made (None
    when it was killed).
    """

    status: Literal["killed", "returned", "raised"]
    returncode: int
    value: Any = None
    value_repr: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    error: BaseException | None = None
    traceback: str | None = None
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
        """Whether both ended the same way: equal values, or the same exception type and
        message. Values that could not be unpickled here are compared by their repr."""
        if self.status != other.status:
            return False
        if self.status == "raised":
            return (self.error_type, self.error_message) == (other.error_type, other.error_message)
        if self.status == "returned":
            if self.value is None and other.value is None:
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
    """One crash point of a `crash_test`: the run killed at write `k` by fault `kind`, then
    resumed `resumes` times (in new processes) until it ended with `outcome`."""

    kind: str
    k: int
    directory: Path
    resumes: int
    outcome: ProcessOutcome


@dataclass(frozen=True)
class CrashReport:
    """What a passing `crash_test` did: the uninterrupted run (`baseline`, `writes` store
    writes), every crash point, how many processes it started and how long it took."""

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
            f"{self.target}: {self.writes} store writes, {self.crash_points} crash points "
            f"({', '.join(self.kinds)}) resumed to the uninterrupted outcome; "
            f"{self.processes} processes in {self.seconds:.1f} s"
        )


# -- one run in a child process ---------------------------------------------------------------
def validate_target(target: str) -> tuple[str, str]:
    """(module, qualified name) of a ``module:function`` target, or ValueError."""
    if not isinstance(target, str) or not _TARGET.match(target):
        raise ValueError(
            f"target must have the form 'module:function' (e.g. 'myapp.flows:checkout', a "
            f"durable function importable by the child process), got {target!r}"
        )
    module, _, qualname = target.partition(":")
    return module, qualname


def _child_environment(fault: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(ENVIRONMENT_VARIABLE, None)
    if fault is not None:
        env[ENVIRONMENT_VARIABLE] = fault
    # The child imports the target as this process would: same import path, in order.
    paths = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    inherited = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(paths + ([inherited] if inherited else []))
    return env


def _validate_fault(fault: str | None) -> None:
    if fault is not None:
        FaultPlan(fault)  # ValueError naming the expected form


def run_workflow_process(
    target: str,
    store_dir: str | os.PathLike[str],
    instance_id: str,
    args: Sequence[Any] = (),
    *,
    kwargs: dict[str, Any] | None = None,
    fault: str | None = None,
    timeout: float = 60,
) -> ProcessOutcome:
    """Call the durable function `target` (``module:function``) once, in a child process,
    over ``DiskStateStore(store_dir)`` as instance `instance_id`.

    With `fault` (``before:K``, ``after:K`` or ``torn:K``) the child kills itself at its
    K-th store write (``DURABLE_FAULT``); without, the variable is cleared for the child.
    A new instance starts with `args`/`kwargs`; an existing one resumes (pass its original
    arguments). Returns how the process ended; raises `HarnessError` when the child could
    not run the call (import failure, unpicklable arguments, no report, timeout).
    """
    validate_target(target)
    _validate_fault(fault)
    try:
        payload = cloudpickle.dumps((tuple(args), dict(kwargs or {})))
    except Exception as error:
        raise HarnessError(f"the arguments for {target} cannot be pickled: {error}") from error
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
        base64.b64encode(payload).decode("ascii"),
    ]
    where = f"{target} (instance {instance_id!r}, fault {fault or 'none'})"
    try:
        finished = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_child_environment(fault),
        )
    except subprocess.TimeoutExpired as error:
        raise HarnessError(f"{where} did not end within {timeout} s") from error
    return _read_outcome(where, finished)


def _read_outcome(where: str, finished: subprocess.CompletedProcess[str]) -> ProcessOutcome:
    stdout, stderr, code = finished.stdout, finished.stderr, finished.returncode
    if code == -signal.SIGKILL:
        return ProcessOutcome("killed", code, stdout=stdout, stderr=stderr)
    report = None
    for line in stdout.splitlines():
        if line.startswith(ERROR_MARKER):
            raise HarnessError(f"{where}: {line[len(ERROR_MARKER):].strip()}")
        if line.startswith(OUTCOME_MARKER):
            report = line[len(OUTCOME_MARKER) :].strip()
    if report is None or code != 0:
        tail = "\n".join(stderr.strip().splitlines()[-15:])
        raise HarnessError(
            f"{where}: the child process exited with status {code} without reporting an "
            f"outcome; its stderr ends with:\n{tail}"
        )
    data = pickle.loads(base64.b64decode(report))
    lines = [line for line in stdout.splitlines() if not line.startswith(OUTCOME_MARKER)]
    common = dict(
        returncode=code,
        writes=data["writes"],
        stdout="\n".join(lines),
        stderr=stderr,
    )
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
) -> CrashReport:
    """Kill the durable function `target` at every store write, resume it, compare.

    1. An uninterrupted run (directory ``store_root/uninterrupted``) gives the expected
       outcome and the number N of store writes; a second run with ``DURABLE_FAULT=before:
       N+1`` must end the same way without reaching a write N+1 (the count is deterministic).
    2. For every kind in `kinds` and every K in 1..N, in a fresh directory
       ``store_root/<kind>-<K>``: a run with ``DURABLE_FAULT=<kind>:<K>`` must be killed;
       runs without a fault then resume it (at most `max_resumes`) until one ends, and it
       must end as the uninterrupted run did (equal value, or same exception and message).
    3. ``check(directory, k, kind)`` is then called for each run directory (with k=0 and
       kind ``"uninterrupted"`` for the uninterrupted run); an exception it raises fails
       that crash point.

    `args` is the argument tuple, or a callable building it from the run's directory (the
    store is ``directory / "store"``). Crash points run `workers` at a time (default: the
    number of CPUs, at most 4). Raises AssertionError naming the target, kind and K of
    every failing crash point; returns a `CrashReport` when all pass.
    """
    started = time.monotonic()
    validate_target(target)
    kinds = tuple(kinds)
    if not kinds or any(kind not in KINDS for kind in kinds):
        raise ValueError(f"kinds must be a non-empty subset of {KINDS}, got {kinds!r}")
    if max_resumes < 1:
        raise ValueError(f"max_resumes must be >= 1, got {max_resumes!r}")
    root = Path(store_root)
    root.mkdir(parents=True, exist_ok=True)
    processes = 0
    counting = threading.Lock()

    def run(directory: Path, fault: str | None) -> ProcessOutcome:
        nonlocal processes
        with counting:
            processes += 1
        return run_workflow_process(
            target,
            directory / "store",
            instance_id,
            _arguments(args, directory),
            kwargs=kwargs,
            fault=fault,
            timeout=timeout,
        )

    baseline_dir = _fresh(root / UNINTERRUPTED)
    baseline = run(baseline_dir, None)
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
                f"{target}: the check failed for the uninterrupted run: {_error_text(error)}"
            ) from error

    def probe() -> str | None:
        directory = _fresh(root / "probe")
        outcome = run(directory, f"before:{writes + 1}")
        if outcome.killed:
            return (
                f"{target}: the uninterrupted run made {writes} store writes, but a second "
                f"run reached a write {writes + 1}: the number of writes is not deterministic"
            )
        if not outcome.same_as(baseline) or outcome.writes != writes:
            return (
                f"{target}: a second uninterrupted run {outcome.describe()} after "
                f"{outcome.writes} writes, the first {baseline.describe()} after {writes}: "
                "the function is not deterministic"
            )
        return None

    def crash_point(kind: str, k: int) -> CrashPoint | str:
        name = f"{target}, crash {kind}:{k} of {writes}"
        directory = _fresh(root / f"{kind}-{k}")
        try:
            crashed = run(directory, f"{kind}:{k}")
            if not crashed.killed:
                return (
                    f"{name}: the fault point never triggered; the run {crashed.describe()} "
                    f"after {crashed.writes} store writes (the uninterrupted run made {writes})"
                )
            resumes = 0
            outcome = crashed
            while outcome.killed and resumes < max_resumes:
                resumes += 1
                outcome = run(directory, None)
        except HarnessError as error:
            return f"{name}: {error}"
        if outcome.killed:
            return f"{name}: still killed after {resumes} resumes without a fault"
        if not outcome.same_as(baseline):
            detail = f"\n{outcome.traceback}" if outcome.traceback else ""
            return (
                f"{name}: resumed, the run {outcome.describe()}, but the uninterrupted run "
                f"{baseline.describe()}{detail}"
            )
        if check is not None:
            try:
                check(directory, k, kind)
            except Exception as error:
                return f"{name}: the check failed: {_error_text(error)}"
        return CrashPoint(kind, k, directory, resumes, outcome)

    jobs = [(kind, k) for kind in kinds for k in range(1, writes + 1)]
    count = workers if workers is not None else min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
        probed = pool.submit(probe)
        results = list(pool.map(lambda job: crash_point(*job), jobs))
        failures = [probed.result()] if probed.result() is not None else []
    failures += [result for result in results if isinstance(result, str)]
    if failures:
        raise AssertionError(
            f"crash test of {target} failed at {len(failures)} of {len(jobs)} crash points:\n"
            + "\n".join(failures)
        )
    return CrashReport(
        target=target,
        writes=writes,
        kinds=kinds,
        baseline=baseline,
        points=tuple(r for r in results if isinstance(r, CrashPoint)),
        processes=processes,
        seconds=time.monotonic() - started,
    )


def _arguments(args: Args, directory: Path) -> tuple[Any, ...]:
    return tuple(args(directory)) if callable(args) else tuple(args)


def _fresh(directory: Path) -> Path:
    if directory.exists():
        raise HarnessError(
            f"{directory} already exists; crash_test needs a store_root without earlier runs"
        )
    directory.mkdir(parents=True)
    return directory


def _error_text(error: BaseException) -> str:
    return str(error) or type(error).__name__


# -- the child --------------------------------------------------------------------------------
class _CountingDiskStateStore(DiskStateStore):
    """A `DiskStateStore` that counts its instance writes, numbered as fault points are."""

    writes = 0

    def append_record(self, instance_id: str, record: bytes) -> None:
        self.writes += 1
        super().append_record(instance_id, record)

    def replace_records(self, instance_id: str, records: Sequence[bytes]) -> None:
        self.writes += 1
        super().replace_records(instance_id, records)


def _resolve(target: str) -> Any:
    from .runtime.program import DurableProgram, make_durable

    module_name, qualname = validate_target(target)
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise HarnessError(
            f"cannot import module {module_name!r} of target {target!r}: "
            f"{type(error).__name__}: {error}"
        ) from error
    value: Any = module
    for part in qualname.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise HarnessError(f"module {module_name!r} has no {qualname!r}") from None
    if isinstance(value, DurableProgram):
        return value
    if inspect.iscoroutinefunction(value):
        return make_durable(value)
    raise HarnessError(
        f"{target} is {type(value).__name__}, not a durable function; apply make_durable to "
        "an async def function"
    )


async def _call(program: Any, store: DiskStateStore, instance_id: str, args, kwargs) -> Any:
    from .runtime.backend import DurableBackend

    backend = DurableBackend(store)
    return await program(*args, orchestration_backend=backend, instance_id=instance_id, **kwargs)


def _run_child(target: str, store_dir: str, instance_id: str, encoded_args: str) -> int:
    try:
        program = _resolve(target)
        args, kwargs = cloudpickle.loads(base64.b64decode(encoded_args))
    except Exception as error:
        print(f"{ERROR_MARKER} {_error_text(error)}", flush=True)
        return _HARNESS_FAILURE
    store = _CountingDiskStateStore(store_dir)
    try:
        value = asyncio.run(_call(program, store, instance_id, args, kwargs))
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
    encoded = base64.b64encode(pickle.dumps(report)).decode("ascii")
    sys.stdout.flush()
    print(f"{OUTCOME_MARKER} {encoded}", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m durable.testing run module:function --store DIR --instance ID --args B64``:
    call the durable function over ``DiskStateStore(DIR)`` and print how it ended (a line
    starting with the outcome marker, then base64 of a pickle). ``--args`` is base64 of a
    cloudpickled ``(args, kwargs)``; `run_workflow_process` is the way to call this."""
    parser = argparse.ArgumentParser(
        prog="python -m durable.testing",
        description="Run a durable function in this process, for durable.testing.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="call a durable function once and report how it ended")
    run.add_argument("target", help="module:function of the durable function")
    run.add_argument("--store", required=True, help="directory of the DiskStateStore")
    run.add_argument("--instance", required=True, help="instance id")
    run.add_argument(
        "--args",
        default=base64.b64encode(cloudpickle.dumps(((), {}))).decode("ascii"),
        help="base64 of a cloudpickled (args, kwargs) pair",
    )
    options = parser.parse_args(argv)
    return _run_child(options.target, options.store, options.instance, options.args)


if __name__ == "__main__":
    from durable.testing import main as _main

    sys.exit(_main())
