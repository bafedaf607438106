"""Generated programs behave as plain Python when paused, crashed and resumed (issue 3, item 10).

`programs()` (programs.py) generates small programs from the constructs the compiler
supports. Each is written to a file (make_durable compiles from source) and run through the
corpus harness: plain, with its wait points removed; compiled over a `DiskStateStore`, paused
at every wait point and resumed through new backend objects; and compiled again, crashed
right after one store write and resumed from what was saved. Result, exception text and
TRACE must be exactly the plain run's.

`DURABLE_HYPOTHESIS_EXAMPLES=5000` runs more examples than the default 200. A tenth of that
number of (other) programs is also crashed after every one of its store writes.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from ..corpus.harness import Outcome, run_compiled, run_plain
from .programs import CONSTRUCTS, GeneratedProgram, programs

#: Processes, crashes at every write, generated programs: left out of the fast subset.
pytestmark = pytest.mark.slow

#: Programs per run of the suite (sized to keep it under five minutes on two cores); set
#: DURABLE_HYPOTHESIS_EXAMPLES for a deeper search (each run sees the same programs).
EXAMPLES = int(os.environ.get("DURABLE_HYPOTHESIS_EXAMPLES", "200"))
EVERY_WRITE_EXAMPLES = max(EXAMPLES // 10, 1)
COVERAGE_SAMPLE = 300


def generated_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


def run_paused(program: GeneratedProgram, root: Path) -> tuple[str, Outcome, int]:
    """Write `program` under `root`, check its paused run; (name, plain outcome, writes)."""
    note(program.source)
    name = program.write(root)
    expected = run_plain(name, programs=root)
    assert expected.error is None or expected.error.startswith("ValueError: r"), (
        "the generator made a program that fails on its own"
    )
    outcome, writes = run_compiled(name, root / "paused", programs=root)
    assert outcome == expected, "paused at every wait point and resumed"
    assert writes >= 1
    return name, expected, writes


def check_crash(name: str, root: Path, expected: Outcome, crash_after: int) -> None:
    state = root / f"crash-{crash_after}"
    outcome, _ = run_compiled(name, state, crash_after, programs=root)
    assert outcome == expected, f"crashed after store write {crash_after} and resumed"


@generated_settings(EXAMPLES)
@given(program=programs(), data=st.data())
def test_generated_program_paused_and_crashed_matches_plain_run(program, data):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        name, expected, writes = run_paused(program, root)
        crash_after = data.draw(st.integers(1, writes), label="crash_after")
        check_crash(name, root, expected, crash_after)


@generated_settings(EVERY_WRITE_EXAMPLES)
@given(program=programs())
def test_generated_program_crashed_after_every_write_matches_plain_run(program):
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        name, expected, writes = run_paused(program, root)
        for crash_after in range(1, writes + 1):
            check_crash(name, root, expected, crash_after)


def test_generator_covers_every_construct():
    seen: Counter[str] = Counter()

    @generated_settings(COVERAGE_SAMPLE)
    @given(programs())
    def sample(program):
        compile(program.source, program.name, "exec")
        seen.update(program.constructs)

    sample()
    missing = sorted(CONSTRUCTS - seen.keys())
    assert not missing, f"no program of the sample of {COVERAGE_SAMPLE} uses {missing}"
