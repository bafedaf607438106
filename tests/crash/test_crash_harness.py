"""Crash tests (DESIGN §9): every workflow killed at every store write, resumed, compared.

Each scenario of `workflows` runs under `durable.testing.crash_test` for the three fault kinds
and every write; the checks count its side effects in the per-run ledger. The harness's own
behaviour (bad targets, faults that never trigger, wrong outcomes) is tested at the end.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from durable import DiskStateStore, DurableBackend
from durable.testing import (
    UNINTERRUPTED,
    CrashReport,
    HarnessError,
    crash_test,
    run_workflow_process,
    validate_target,
)

from . import workflows
from .workflows import ATTEMPTS, CHARGES, EFFECTS, read_lines

#: Processes, crashes at every write, generated programs: left out of the fast subset.
pytestmark = pytest.mark.slow

MODULE = "tests.crash.workflows"
INSTANCE = "crash-test"


@dataclass(frozen=True)
class Scenario:
    function: str
    #: Store writes of an uninterrupted run: 1 to start and 1 to finish (or to park); per
    #: attempt of a call 1 (2 with a reconciler: PENDING first); 1 per event or timer.
    writes: int
    extra_args: tuple = ()
    #: The uninterrupted outcome: a value, or (exception type, message) when `raises`.
    expected: Any = None
    raises: bool = False
    #: Side effects without reconciler (at least once, never lost).
    effects: tuple[str, ...] = ()
    #: Reconciled charges (exactly once).
    charges: tuple[str, ...] = ()
    #: Calls with a RetryPolicy: name -> attempts of an uninterrupted run.
    attempts: dict[str, int] = field(default_factory=dict)
    #: Events published before the first run; each must be consumed exactly once.
    events: tuple[tuple[str, Any], ...] = ()
    #: The backend compacts the log every that many records (None: the default).
    compact_after: int | None = None
    label: str = ""

    @property
    def target(self) -> str:
        return f"{MODULE}:{self.function}"

    @property
    def name(self) -> str:
        return self.label or self.function

    def args(self, directory: Path) -> tuple:
        return (str(directory / "ledger"), *self.extra_args)


SCENARIOS = [
    Scenario("for_loop", 5, expected=30, effects=("for-0", "for-1", "for-2")),
    Scenario(
        "for_loop",
        5,
        expected=30,
        effects=("for-0", "for-1", "for-2"),
        compact_after=2,
        label="for_loop_compacting",
    ),
    Scenario("while_loop", 4, (2,), expected=[0, 1], effects=("while-0", "while-1")),
    Scenario("if_else", 4, ([3, 8],), expected=["low 3", "high 8"], effects=("low-3", "high-8")),
    Scenario(
        "try_finally",
        6,
        expected=[1, "boom failed", 3],
        effects=("work", "boom", "handled", "cleanup"),
    ),
    Scenario("nested", 4, expected=[4, 6], effects=("one-child", "three-child")),
    Scenario(
        "gathered",
        6,
        expected=[1, "receipt-gather-b-2", 3],
        effects=("gather-a", "gather-c"),
        charges=("gather-b 2",),
    ),
    Scenario(
        "gathered_exceptions",
        4,
        expected=["ValueError('gather-fail failed')", "2"],
        effects=("gather-fail", "gather-ok"),
    ),
    Scenario(
        "retries",
        8,
        expected=["flaky ok", "gave up: doomed is down"],
        attempts={"flaky": 3, "doomed": 3},
    ),
    Scenario(
        "reconciled",
        6,
        expected=["receipt-order-1-10", "receipt-order-2-20"],
        charges=("order-1 10", "order-2 20"),
    ),
    Scenario("unreconciled", 4, expected=3, effects=("effect-1", "effect-2")),
    Scenario(
        "failing",
        3,
        expected=("builtins.RuntimeError", "the workflow gave up"),
        raises=True,
        effects=("before-failure",),
    ),
    Scenario(
        "events_and_timer",
        6,
        expected=["ready", "ready"],
        effects=("got-ready",),
        events=(("continue", None), ("go", "ready")),
    ),
    Scenario(
        "retries_reconciled",
        8,
        expected="receipt-order-9-90",
        charges=("order-9 90",),
        attempts={"order-9": 3},
    ),
    Scenario(
        "gathered_retry",
        6,
        expected=["gather-flaky ok", 2],
        effects=("gather-plain",),
        attempts={"gather-flaky": 3},
    ),
    Scenario(
        "nested_failure",
        5,
        expected="caught kid-fail failed",
        effects=("kid-start", "kid-fail", "parent-finally"),
    ),
    Scenario(
        "sparse_snapshots",
        8,
        expected=[6, ["receipt-order-5-50"]],
        effects=("sparse-0", "sparse-1", "sparse-2", "sparse-3"),
        charges=("order-5 50",),
    ),
    Scenario(
        "parks",
        3,
        expected=("durable._errors.PauseForEventException", "never"),
        raises=True,
        effects=("before-wait",),
    ),
]


def check_ledgers(scenario: Scenario, directory: Path, k: int, kind: str) -> None:
    """What a run's side effects must look like once the run has ended.

    One crash re-runs at most the one call whose write was lost: killed before its write
    (``before``) or in it (``torn``). Killed right after a write (``after``) nothing is
    lost, so nothing runs twice. Reconciled charges happen exactly once in every case, and
    a retried call's attempts already journaled are never made again (the count survives).
    """
    where = f"{scenario.name}, {kind}:{k}"
    ledger = directory / "ledger"
    may_repeat = 0 if kind in (UNINTERRUPTED, "after") else 1

    effects = Counter(read_lines(ledger / EFFECTS))
    assert set(effects) == set(scenario.effects), f"{where}: effects {dict(effects)}"
    repeats = sum(count - 1 for count in effects.values())

    charges = Counter(read_lines(ledger / CHARGES))
    assert charges == Counter(scenario.charges), (
        f"{where}: each charge must be in the ledger exactly once, found {dict(charges)}"
    )

    attempts = Counter(read_lines(ledger / ATTEMPTS))
    assert set(attempts) == set(scenario.attempts), f"{where}: attempts {dict(attempts)}"
    for name, expected in scenario.attempts.items():
        assert attempts[name] >= expected, f"{where}: {name} made {attempts[name]} attempts"
        repeats += attempts[name] - expected

    pending = DurableBackend(DiskStateStore(directory / "store")).pending_events(INSTANCE)
    assert pending == [], f"{where}: events left unconsumed: {pending}"

    assert repeats <= may_repeat, (
        f"{where}: {repeats} side effects ran again (at most {may_repeat} may after one "
        f"{kind} crash): effects {dict(effects)}, attempts {dict(attempts)}"
    )


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_every_crash_point_resumes_to_the_uninterrupted_outcome(scenario, tmp_path):
    report = crash_test(
        scenario.target,
        scenario.args,
        store_root=tmp_path,
        instance_id=INSTANCE,
        check=lambda directory, k, kind: check_ledgers(scenario, directory, k, kind),
        events=scenario.events,
        compact_after=scenario.compact_after,
    )
    baseline = report.baseline
    if scenario.raises:
        assert (baseline.error_type, baseline.error_message) == scenario.expected
    else:
        assert baseline.returned and baseline.value == scenario.expected
    assert report.writes == scenario.writes
    assert report.crash_points == 3 * report.writes
    assert {(p.kind, p.k) for p in report.points} == {
        (kind, k) for kind in ("before", "after", "torn") for k in range(1, report.writes + 1)
    }
    # Uninterrupted, probe, and per point one killed run plus its resumes.
    assert report.processes == 2 + sum(1 + p.resumes for p in report.points)
    assert all(p.resumes == 1 for p in report.points)
    print(report)


# -- the harness itself ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    ["tests.crash.workflows", "tests.crash.workflows:", ":for_loop", "a b:c", "m:f:g", "m:1f", ""],
)
def test_a_target_not_of_the_form_module_function_is_refused(target, tmp_path):
    with pytest.raises(ValueError, match="'module:function'"):
        validate_target(target)
    with pytest.raises(ValueError, match="'module:function'"):
        run_workflow_process(target, tmp_path / "store", "x")
    with pytest.raises(ValueError, match="'module:function'"):
        crash_test(target, store_root=tmp_path)
    assert not any(tmp_path.iterdir()), "nothing runs for a malformed target"


def test_a_malformed_fault_or_kind_is_refused(tmp_path):
    with pytest.raises(ValueError, match="before:K, after:K or torn:K"):
        run_workflow_process(f"{MODULE}:for_loop", tmp_path, "x", fault="during:1")
    with pytest.raises(ValueError, match="kinds"):
        crash_test(f"{MODULE}:for_loop", store_root=tmp_path, kinds=("sideways",))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tests.crash.no_such_module:flow", "cannot import module 'tests.crash.no_such_module'"),
        (f"{MODULE}:no_such_function", "has no attribute 'no_such_function'"),
        (f"{MODULE}:NOT_A_FUNCTION", "not a durable function"),
    ],
)
@pytest.mark.parametrize("fork_server", [True, False])
def test_a_target_that_cannot_be_run_is_a_harness_error(target, message, fork_server, tmp_path):
    with pytest.raises(HarnessError, match=message):
        crash_test(target, store_root=tmp_path, fork_server=fork_server)


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_process_that_ends_without_reporting_is_a_harness_error(fork_server, tmp_path):
    with pytest.raises(HarnessError, match="exited with status 5"):
        crash_test("tests.crash.exits_on_import:flow", store_root=tmp_path, fork_server=fork_server)


@pytest.mark.parametrize("fork_server", [True, False])
def test_a_run_past_its_timeout_is_killed_and_reported(fork_server, tmp_path):
    started = time.monotonic()
    with pytest.raises(HarnessError, match=r"did not end within 0.5 s"):
        crash_test(
            f"{MODULE}:slow", (30,), store_root=tmp_path, timeout=0.5, fork_server=fork_server
        )
    assert time.monotonic() - started < 10


def test_one_process_killed_at_a_write_then_resumed(tmp_path):
    ledger = str(tmp_path / "ledger")
    killed = run_workflow_process(
        f"{MODULE}:unreconciled", tmp_path / "store", "one", (ledger,), fault="before:3"
    )
    assert killed.killed and killed.returncode == -9 and killed.writes is None
    assert read_lines(Path(ledger) / EFFECTS) == ["effect-1", "effect-2"]
    resumed = run_workflow_process(f"{MODULE}:unreconciled", tmp_path / "store", "one", (ledger,))
    assert resumed.returned and resumed.value == 3 and resumed.writes == 2
    # effect-1 was journaled by write 2; effect-2's write was lost, so it ran again.
    assert read_lines(Path(ledger) / EFFECTS) == ["effect-1", "effect-2", "effect-2"]
    again = run_workflow_process(f"{MODULE}:unreconciled", tmp_path / "store", "one", (ledger,))
    assert again.returned and again.value == 3 and again.writes == 0


def test_a_fault_past_the_last_write_never_triggers(tmp_path):
    outcome = run_workflow_process(
        f"{MODULE}:for_loop", tmp_path / "store", "x", (str(tmp_path / "ledger"),), fault="torn:6"
    )
    assert outcome.returned and outcome.value == 30 and outcome.writes == 5


def test_a_raised_exception_is_reported_with_type_message_and_traceback(tmp_path):
    outcome = run_workflow_process(
        f"{MODULE}:failing", tmp_path / "store", "x", (str(tmp_path / "ledger"),)
    )
    assert outcome.raised and outcome.writes == 3
    assert (outcome.error_type, outcome.error_message) == (
        "builtins.RuntimeError",
        "the workflow gave up",
    )
    assert isinstance(outcome.error, RuntimeError)
    assert "the workflow gave up" in outcome.traceback
    assert outcome.describe() == "raised builtins.RuntimeError: the workflow gave up"


def test_a_plain_async_function_is_made_durable_in_the_child(tmp_path):
    outcome = run_workflow_process(f"{MODULE}:plain_async", tmp_path / "store", "x", (21,))
    assert outcome.returned and outcome.value == 42 and outcome.writes == 2


def test_a_fault_point_that_never_triggers_is_reported(tmp_path):
    shared = tmp_path / "shared"
    with pytest.raises(AssertionError) as failure:
        crash_test(
            f"{MODULE}:shrinking", (str(shared),), store_root=tmp_path / "runs", kinds=("after",)
        )
    message = str(failure.value)
    assert f"{MODULE}:shrinking, crash after:4 (of 4 writes): the fault point never " in message
    assert "the number of writes is not deterministic" in message or "not deterministic" in message


def test_a_run_that_resumes_to_another_outcome_is_reported_by_kind_and_k(tmp_path):
    with pytest.raises(AssertionError) as failure:
        crash_test(
            f"{MODULE}:not_crash_safe",
            lambda directory: (str(directory / "ledger"),),
            store_root=tmp_path,
        )
    message = str(failure.value)
    lines = [line for line in message.splitlines() if line.startswith(MODULE)]
    failed = {line.split(" (of ")[0].rsplit(" ", 1)[1] for line in lines}
    # Write 1 starts the instance before bump() runs; a crash that loses write 2 (the
    # checkpoint after bump) makes it run again, and the result changes.
    assert failed == {"before:2", "torn:2"}, message
    assert "resumed, the run returned 2, but the uninterrupted run returned 1" in message


def test_the_checks_see_where_an_effect_without_reconciler_runs_twice(tmp_path):
    """The ledger checks are sharp: demanding exactly once of calls without reconciler
    fails exactly where a crash loses the write that journals a call that already ran."""

    def exactly_once(directory: Path, k: int, kind: str) -> None:
        effects = Counter(read_lines(directory / "ledger" / EFFECTS))
        if effects != Counter(["effect-1", "effect-2"]):
            raise AssertionError(f"effects ran {dict(effects)}")

    with pytest.raises(AssertionError) as failure:
        crash_test(
            f"{MODULE}:unreconciled",
            lambda directory: (str(directory / "ledger"),),
            store_root=tmp_path,
            check=exactly_once,
        )
    lines = str(failure.value).splitlines()[1:]
    # Writes 2 and 3 journal effect-1 and effect-2; write 1 starts, write 4 finishes.
    assert lines == [
        f"{MODULE}:unreconciled, crash {kind}:{k} (of 4 writes): the check failed: "
        f"AssertionError: effects ran {{'effect-1': {1 + (k == 2)}, 'effect-2': {1 + (k == 3)}}}"
        for kind in ("before", "torn")
        for k in (2, 3)
    ]


def test_a_failing_check_is_reported_by_kind_and_k(tmp_path):
    def check(directory: Path, k: int, kind: str) -> None:
        if kind == "torn" and k == 2:
            raise AssertionError("the ledger looks wrong")

    with pytest.raises(AssertionError) as failure:
        crash_test(
            f"{MODULE}:unreconciled",
            lambda directory: (str(directory / "ledger"),),
            store_root=tmp_path,
            check=check,
        )
    assert str(failure.value).splitlines()[1:] == [
        f"{MODULE}:unreconciled, crash torn:2 (of 4 writes): the check failed: "
        "AssertionError: the ledger looks wrong"
    ]


def test_a_store_root_with_earlier_runs_is_refused(tmp_path):
    (tmp_path / "uninterrupted").mkdir()
    with pytest.raises(HarnessError, match="already exists"):
        crash_test(f"{MODULE}:plain_async", (1,), store_root=tmp_path)


def test_plain_processes_and_the_fork_server_agree(tmp_path):
    """Without the fork server every run is a `python -m durable.testing run` process."""
    scenario = next(s for s in SCENARIOS if s.function == "reconciled")
    reports: list[CrashReport] = []
    for fork_server in (False, True):
        started = time.monotonic()
        reports.append(
            crash_test(
                scenario.target,
                scenario.args,
                store_root=tmp_path / str(fork_server),
                kinds=("torn",),
                check=lambda directory, k, kind: check_ledgers(scenario, directory, k, kind),
                fork_server=fork_server,
            )
        )
        print(f"fork_server={fork_server}: {time.monotonic() - started:.2f} s")
    plain, forked = reports
    assert (plain.writes, plain.crash_points, plain.processes) == (
        forked.writes,
        forked.crash_points,
        forked.processes,
    )
    assert plain.baseline.same_as(forked.baseline)


def test_workflows_module_exports_the_scenarios():
    for scenario in SCENARIOS:
        assert hasattr(workflows, scenario.function), scenario.function
