"""Resuming a frame into changed code is never silent (DESIGN §4, COMPILER.md §3.10).

Each test writes a module to disk, suspends an instance in it, rewrites the source and
imports it again, as a deploy between suspension and resume would.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from durable import DiskStateStore, DurableBackend, IncompatibleStateError, PauseForEventException

FLOW = """
from durable import PauseForEventException, make_durable

MIGRATIONS = {migrations}


@make_durable({options})
async def flow(n):
    total = n * 2
    {extra}
    raise PauseForEventException("go")
    return {result}
"""


def wait_line(extra="pass") -> int:
    """Line of the wait point in the module `load` writes."""
    source = FLOW.format(result="", extra=extra, options="", migrations="{}")
    return source.splitlines().index('    raise PauseForEventException("go")') + 1


def load(tmp_path, monkeypatch, result="total", extra="pass", options="", migrations="{}"):
    source = FLOW.format(result=result, extra=extra, options=options, migrations=migrations)
    (tmp_path / "changing_flow.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("changing_flow", None)
    importlib.invalidate_caches()
    return importlib.import_module("changing_flow")


async def suspend(module, store) -> str:
    with pytest.raises(PauseForEventException):
        await module.flow(1, orchestration_backend=DurableBackend(store), instance_id="f")
    return module.flow.code.fingerprint


async def resume(module, store):
    backend = DurableBackend(store)
    backend.publish_event("f", "go")
    return await module.flow(1, orchestration_backend=backend, instance_id="f")


async def test_changed_code_resumes_on_the_version_saved_with_the_instance(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    await suspend(load(tmp_path, monkeypatch, result="total"), store)
    new = load(tmp_path, monkeypatch, result="total + 1")
    assert await resume(new, store) == 2  # the old code's `return total`


async def test_new_instances_run_the_current_code(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    await suspend(load(tmp_path, monkeypatch, result="total"), store)
    new = load(tmp_path, monkeypatch, result="total + 1")
    backend = DurableBackend(store)
    backend.publish_event("other", "go")
    assert await new.flow(1, orchestration_backend=backend, instance_id="other") == 3


async def test_with_on_code_change_fail_the_error_names_function_fingerprints_and_line(
    tmp_path, monkeypatch
):
    store = DiskStateStore(tmp_path / "store")
    old_fingerprint = await suspend(load(tmp_path, monkeypatch), store)
    new = load(tmp_path, monkeypatch, result="total + 1", options='on_code_change="fail"')
    with pytest.raises(IncompatibleStateError) as caught:
        await resume(new, store)
    message = str(caught.value)
    assert "flow" in message and f"line {wait_line()}" in message and "'f'" in message
    assert old_fingerprint[:16] in message and new.flow.code.fingerprint[:16] in message
    assert "migrations=" in message


async def test_instance_without_a_saved_copy_of_its_code_refuses_to_resume(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    await suspend(load(tmp_path, monkeypatch), store)
    backend = DurableBackend(store)
    state = backend.load_state("f")
    state["code_versions"] = {}
    backend.save_state("f", state)
    new = load(tmp_path, monkeypatch, result="total + 1")
    with pytest.raises(IncompatibleStateError, match="carries no copy of that code"):
        await resume(new, store)


async def test_migration_moves_a_saved_frame_onto_the_new_code(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    old_fingerprint = await suspend(load(tmp_path, monkeypatch), store)
    # The new code has one more line before the wait point, so its checkpoint moved down.
    extra = "total += 1\n    log = []"
    new_line = wait_line(extra)
    assert new_line == wait_line() + 1
    migrate = f"lambda line, live: ({new_line}, {{'total': live['total'] * 100}})"
    new = load(
        tmp_path,
        monkeypatch,
        result="total + 1",
        extra=extra,
        options="migrations=MIGRATIONS",
        migrations=f"{{'{old_fingerprint[:16]}': {migrate}}}",
    )
    assert new.flow.code.resume_point_at(new_line) == 1
    assert await resume(new, store) == 201  # the new `return total + 1`, migrated total 200


async def test_reformatted_source_resumes_on_the_current_code(tmp_path, monkeypatch):
    store = DiskStateStore(tmp_path / "store")
    old_fingerprint = await suspend(load(tmp_path, monkeypatch), store)
    new = load(tmp_path, monkeypatch, result="(  total  )  # same code, new layout")
    assert new.flow.code.fingerprint == old_fingerprint
    assert await resume(new, store) == 2
