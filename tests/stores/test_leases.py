"""Machine leases (`durable.stores.locks`): flock files on POSIX, SQLite locks where there is no
flock; both refuse a second holder and end with the holder's process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

from durable.stores.locks import DatabaseLeases, FileLeases


@pytest.fixture(params=[FileLeases, DatabaseLeases], ids=["flock", "sqlite-lock"])
def kind(request):
    return request.param


def test_a_held_lease_is_refused_to_another_holder_naming_the_first(kind, tmp_path):
    first, second = kind(tmp_path / "leases"), kind(tmp_path / "leases")
    assert first.acquire("order-7", "worker ada") is None
    holder = second.acquire("order-7", "worker bob")
    assert holder is not None and "worker ada" in holder
    first.close()


def test_a_released_lease_can_be_taken_again(kind, tmp_path):
    first, second = kind(tmp_path / "leases"), kind(tmp_path / "leases")
    assert first.acquire("order-7", "worker ada") is None
    first.release("order-7")
    assert second.acquire("order-7", "worker bob") is None
    assert second.holds("order-7") and not first.holds("order-7")
    second.close()


def test_the_lease_of_a_killed_process_is_free_at_once(kind, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from pathlib import Path
                from durable.stores.locks import {kind.__name__}
                leases = {kind.__name__}(Path({str(tmp_path / "leases")!r}))
                assert leases.acquire("order-7", "the killed one") is None
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        leases = kind(tmp_path / "leases")
        assert "the killed one" in (leases.acquire("order-7", "next") or "")
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert leases.acquire("order-7", "next") is None
        leases.close()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_forget_removes_the_files_of_a_lease_no_one_holds(kind, tmp_path):
    leases = kind(tmp_path / "leases")
    assert leases.acquire("order-7", "worker ada") is None
    leases.release("order-7")
    leases.forget("order-7")
    assert list((tmp_path / "leases").iterdir()) == []


def test_forget_keeps_a_held_lease(kind, tmp_path):
    holder, other = kind(tmp_path / "leases"), kind(tmp_path / "leases")
    assert holder.acquire("order-7", "worker ada") is None
    other.forget("order-7")
    assert "worker ada" in (other.acquire("order-7", "worker bob") or "")
    holder.close()
