"""Every corpus program behaves as plain Python when paused, crashed and resumed anywhere."""

from __future__ import annotations

import gc
import warnings

import pytest

from durable.runtime import out_of_line
from tests.crashing import WriteCounter

from .harness import PROGRAMS, run_compiled, run_plain

NAMES = sorted(path.stem for path in PROGRAMS.glob("*.py"))


def test_corpus_is_large_enough():
    assert len(NAMES) >= 40


def resumes_after_a_crash_at_every_write(name: str, tmp_path, compact_after: int = 256) -> None:
    """Crash the program at each of its store writes in turn; each resume must end as the
    plain run does."""
    expected = run_plain(name)
    _, total_writes = run_compiled(name, tmp_path / "uninterrupted", compact_after=compact_after)
    for crash_after in range(1, total_writes + 1):
        outcome, _ = run_compiled(
            name, tmp_path / f"crash-{crash_after}", crash_after, compact_after=compact_after
        )
        assert outcome == expected, f"{name}: resumed after a crash at write {crash_after}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_resume_after_a_crash_at_every_write_of_a_log_compacted_every_other_write(name, tmp_path):
    """Compactions fold every record into one; the records after one must add to it, never
    replace what it holds (the journal entries a snapshot still reads, the code versions)."""
    resumes_after_a_crash_at_every_write(name, tmp_path, compact_after=2)


@pytest.mark.parametrize("name", NAMES)
def test_compiled_run_with_pauses_matches_plain_run(name, tmp_path):
    expected = run_plain(name)
    outcome, writes = run_compiled(name, tmp_path)
    assert outcome == expected
    assert writes >= 1


@pytest.fixture
def every_value_out_of_line(monkeypatch):
    """Strings and bytes of 16 or more go out of line from an instance's first snapshot
    (by default only those of a large state do): the corpus run the other way."""
    monkeypatch.setattr(out_of_line, "MIN_SIZE", 16)
    monkeypatch.setattr(out_of_line, "LARGE_STATE", 0)
    monkeypatch.setattr(out_of_line, "ENABLED", True)


@pytest.mark.parametrize("name", NAMES)
def test_compiled_run_with_pauses_and_values_out_of_line_matches_plain_run(
    name, tmp_path, every_value_out_of_line
):
    expected = run_plain(name)
    outcome, _ = run_compiled(name, tmp_path)
    assert outcome == expected


#: Programs crashed at every write with their values out of line (the whole corpus runs so
#: with DURABLE_OUT_OF_LINE=always).
CRASHED_OUT_OF_LINE = [
    "closure_reconciler_lambda",
    "exception_after_wait",
    "gather_nested_fan_out",
    "helper_durable_ops_inside",
    "locals_many_types",
    "recursion_tree_walk",
    "try_finally_return",
    "with_resumable",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", CRASHED_OUT_OF_LINE)
def test_resume_after_a_crash_at_every_write_with_values_out_of_line_matches_plain_run(
    name, tmp_path, every_value_out_of_line
):
    resumes_after_a_crash_at_every_write(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_resume_after_a_crash_at_every_store_write_matches_plain_run(name, tmp_path):
    resumes_after_a_crash_at_every_write(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_compiled_run_over_postgres_matches_plain_run(name, tmp_path, postgres_dsn):
    expected = run_plain(name)
    outcome, writes = run_compiled(name, tmp_path, postgres=postgres_dsn)
    assert outcome == expected
    assert writes >= 1


#: Programs crashed at every write over PostgreSQL too: each shape of durable state (steps,
#: events, helpers, fan-out, retries, loops) once; the whole corpus is crashed on disk above
#: (the exception paths of helpers, which no store sees, too).
POSTGRES_CRASHED = [
    "closure_reconciler_lambda",
    "exception_after_wait",
    "first_approve_reject",
    "gather_durable_children",
    "gather_nested_fan_out",
    "helper_durable_ops_inside",
    "locals_many_types",
    "recursion_tree_walk",
    "try_finally_return",
    "while_counter",
    "with_resumable",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", POSTGRES_CRASHED)
def test_resume_over_postgres_after_a_crash_at_every_write_matches_plain_run(
    name, tmp_path, postgres_dsn
):
    expected = run_plain(name)
    _, total_writes = run_compiled(name, tmp_path, postgres=postgres_dsn)
    for crash_after in range(1, total_writes + 1):
        outcome, _ = run_compiled(name, tmp_path, crash_after, postgres=postgres_dsn)
        assert outcome == expected, f"{name}: resumed after a crash at write {crash_after}"


#: Programs whose plain code changes process memory that outlives a call (module globals,
#: a mutable default): what runs again after a failed read changes it twice, so their
#: result may differ from one uninterrupted run's, as it would after an in-process retry of
#: any at-least-once code (and so may the values their effects record). Their errors are still
#: checked: a failed read never becomes the program's.
MEMORY_ACROSS_CALLS = {
    "await_reads_global_first",
    "augassign_module_object",
    "comprehension_in_expression",
    "helper_decorator_wrapper",
    "helper_params_kinds",
    "module_globals_live",
    "params_mutable_default",
}


#: The most reads one program is run with failing, each in its own run.
READS_FAILED_AT_MOST = 12


def reads_to_fail(reads: int) -> list[int]:
    """Which of a program's `reads` fail, one per run: every one of a short program; of a
    long one (a loop that waits at every turn), the first six — loading the instance and
    its first waits — then six spread evenly up to the last, whose kinds repeat the first's."""
    if reads <= READS_FAILED_AT_MOST:
        return list(range(1, reads + 1))
    spread = [7 + round(i * (reads - 7) / 5) for i in range(6)]
    return sorted({*range(1, 7), *spread})


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_store_read_failing_anywhere_is_never_the_programs_failure(name, tmp_path):
    """Each read of records or events the runtime makes fails once in turn (a store server
    restarting): the run stops at its last write, not in the program, and the next call
    goes on to the plain run's result. The code run since that write runs again, as after a
    crash there, so effects may repeat, but none is missing."""
    expected = run_plain(name)
    counted = WriteCounter()
    run_compiled(name, tmp_path / "uninterrupted", counter=counted)
    for fail_read in reads_to_fail(counted.reads):
        check_read_failure(name, tmp_path, expected, fail_read)


#: Programs that keep coroutines not started yet across a checkpoint (in variables, in
#: containers, in a gather made before a pause).
KEEP_COROUTINES = [
    "coroutines_kept_in_containers",
    "except_star_groups",
    "gather_prepared_coroutines_failures",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", KEEP_COROUTINES)
def test_a_run_stopped_by_a_failed_read_closes_the_coroutines_its_snapshot_made(name, tmp_path):
    expected = run_plain(name)
    counted = WriteCounter()
    run_compiled(name, tmp_path / "uninterrupted", counter=counted)
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always", RuntimeWarning)
        for fail_read in reads_to_fail(counted.reads):
            check_read_failure(name, tmp_path, expected, fail_read)
        gc.collect()
    # A resumed run makes the snapshot's coroutines again; one stopped by a read closes them.
    assert not [w for w in warned if "never awaited" in str(w.message)]


def check_read_failure(name: str, tmp_path, expected, fail_read: int) -> None:
    """The run whose read `fail_read` fails once ends as the plain run does."""
    outcome, _ = run_compiled(name, tmp_path / f"read-{fail_read}", fail_read=fail_read)
    where = f"{name}: read {fail_read} of the store failed"
    assert outcome.error == expected.error, where
    if name not in MEMORY_ACROSS_CALLS:
        assert outcome.result == expected.result, where
        assert set(map(repr, outcome.trace)) == set(map(repr, expected.trace)), where
