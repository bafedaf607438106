"""Every corpus program behaves as plain Python when paused, crashed and resumed anywhere."""

from __future__ import annotations

import pytest

from .harness import PROGRAMS, run_compiled, run_plain

NAMES = sorted(path.stem for path in PROGRAMS.glob("*.py"))


def test_corpus_is_large_enough():
    assert len(NAMES) >= 40


@pytest.mark.parametrize("name", NAMES)
def test_compiled_run_with_pauses_matches_plain_run(name, tmp_path):
    expected = run_plain(name)
    outcome, writes = run_compiled(name, tmp_path)
    assert outcome == expected
    assert writes >= 1


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_resume_after_a_crash_at_every_store_write_matches_plain_run(name, tmp_path):
    expected = run_plain(name)
    _, total_writes = run_compiled(name, tmp_path / "uninterrupted")
    for crash_after in range(1, total_writes + 1):
        outcome, _ = run_compiled(name, tmp_path / f"crash-{crash_after}", crash_after)
        assert outcome == expected, f"{name}: resumed after a crash at write {crash_after}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_compiled_run_over_postgres_matches_plain_run(name, tmp_path, postgres_dsn):
    expected = run_plain(name)
    outcome, writes = run_compiled(name, tmp_path, postgres=postgres_dsn)
    assert outcome == expected
    assert writes >= 1


#: Programs crashed at every write over PostgreSQL too: each shape of durable state (steps,
#: events, helpers, fan-out, retries, loops) once; the whole corpus is crashed on disk above.
POSTGRES_CRASHED = [
    "closure_reconciler_lambda",
    "exception_after_wait",
    "first_approve_reject",
    "gather_durable_children",
    "gather_nested_fan_out",
    "helper_durable_ops_inside",
    "helper_exception_paths",
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
