"""Deleting instances: one by id (`durable delete`, `handle.delete()`), or every ended one
last written long ago (`durable prune`, `durable.prune_instances`); never one a runner
holds."""

from __future__ import annotations

import time

import pytest

from durable import (
    InstanceBusyError,
    PauseForEventException,
    prune_instances,
)
from durable.cli import EXIT_BUSY, EXIT_NOT_FOUND, main
from tests.worker import flows


async def waiting_with_an_event(backend, instance_id: str = "w-1") -> None:
    with pytest.raises(PauseForEventException):
        await flows.approval("req", orchestration_backend=backend, instance_id=instance_id)
    backend.publish_event(instance_id, "other", 1)


def command(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(list(arguments))
    out, err = capsys.readouterr()
    return code, out, err


async def test_delete_forgets_the_records_and_the_pending_events(stored, capsys):
    url, backend = stored
    await waiting_with_an_event(backend)
    assert command(capsys, "delete", "--store", url, "w-1")[:2] == (0, "deleted instance 'w-1'\n")
    assert backend.store.read_records("w-1") == [] and backend.store.read_events("w-1") == []
    assert backend.read_state("w-1") is None


async def test_a_deleted_instance_id_can_start_afresh(stored):
    _, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    assert backend.delete_instance("r-1") is True
    fresh = stored.reopen()
    await flows.record("/dev/null", "b", orchestration_backend=fresh, instance_id="r-1")
    assert fresh.read_state("r-1")["status"] == "completed"


def test_delete_of_a_missing_instance_exits_not_found(stored, capsys):
    url, _ = stored
    code, _, err = command(capsys, "delete", "--store", url, "nobody")
    assert code == EXIT_NOT_FOUND and "no instance 'nobody'" in err


async def test_delete_refuses_an_instance_a_runner_holds(stored, capsys):
    url, backend = stored
    await waiting_with_an_event(backend)
    holder = stored.reopen()
    assert holder.acquire_instance("w-1") is None
    try:
        code, _, err = command(capsys, "delete", "--store", url, "w-1")
        assert code == EXIT_BUSY and "is being run by another runner" in err
        with pytest.raises(InstanceBusyError):
            flows.approval.handle("w-1", orchestration_backend=backend).delete()
    finally:
        holder.release_instance("w-1")
    assert backend.read_state("w-1")["status"] == "waiting"


async def test_a_handle_deletes_its_instance(stored):
    _, backend = stored
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="r-1")
    handle = flows.record.handle("r-1", orchestration_backend=backend)
    assert handle.delete() is True and handle.delete() is False


async def ended_and_waiting(backend) -> None:
    await flows.record("/dev/null", "a", orchestration_backend=backend, instance_id="done-1")
    with pytest.raises(LookupError):
        await flows.broken("x", orchestration_backend=backend, instance_id="failed-1")
    await waiting_with_an_event(backend)


async def test_prune_deletes_ended_instances_older_than_the_age(stored):
    _, backend = stored
    await ended_and_waiting(backend)
    assert prune_instances(backend, older_than=3600) == []
    time.sleep(0.02)
    assert sorted(prune_instances(backend, older_than=0.01)) == ["done-1", "failed-1"]
    assert sorted(backend.store.list_instances()) == ["w-1"]


async def test_prune_dry_run_deletes_nothing(stored, capsys):
    url, backend = stored
    await ended_and_waiting(backend)
    code, out, err = command(capsys, "prune", "--store", url, "--older-than", "0", "--dry-run")
    assert code == 0 and sorted(out.split()) == sorted(
        ["would", "delete", "done-1", "would", "delete", "failed-1"]
    )
    assert len(backend.store.list_instances()) == 3


async def test_prune_takes_the_statuses_to_prune(stored, capsys):
    url, backend = stored
    await ended_and_waiting(backend)
    code, out, _ = command(
        capsys, "prune", "--store", url, "--older-than", "0s", "--status", "failed"
    )
    assert code == 0 and out == "deleted failed-1\n"


async def test_prune_leaves_an_instance_a_runner_holds(stored):
    _, backend = stored
    await ended_and_waiting(backend)
    holder = stored.reopen()
    assert holder.acquire_instance("done-1") is None
    try:
        assert prune_instances(backend, older_than=0) == ["failed-1"]
    finally:
        holder.release_instance("done-1")


@pytest.mark.parametrize("age", ["soon", "-5", "1x", ""])
def test_prune_refuses_an_age_it_cannot_read(stored, capsys, age):
    url, _ = stored
    with pytest.raises(SystemExit) as exit_:
        main(["prune", "--store", url, "--older-than", age])
    assert exit_.value.code == 2
    assert "expected an age such as 3600, 30s, 15m, 12h or 7d" in capsys.readouterr().err
