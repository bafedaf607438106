"""A real PostgreSQL server for the tests: made with initdb in a temporary directory and
started on a free loopback port, run by the `postgres` system user when the tests run as root.

``DURABLE_TEST_POSTGRES`` set to a conninfo string or URL uses that server instead. Without
either, the tests that need PostgreSQL fail, saying how to get it: nothing is skipped.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

ENVIRONMENT_VARIABLE = "DURABLE_TEST_POSTGRES"
USER = "durable"

#: conninfo -> how to restart it, for the servers `running_server` started.
_restarts: dict[str, Callable[[], None]] = {}


def _binary(name: str) -> str:
    """The path of PostgreSQL's `name` program: on PATH, or where Debian keeps it."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    raise RuntimeError(
        f"the PostgreSQL tests need a PostgreSQL server and found no {name}: install it "
        "(apt-get install postgresql; .ci/run does), or set "
        f"{ENVIRONMENT_VARIABLE} to the conninfo of a server to use"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def restart(dsn: str) -> None:
    """Restart the server `running_server` started at `dsn`: every connection to it ends."""
    if dsn not in _restarts:
        raise RuntimeError(
            f"{dsn} was not started by these tests ({ENVIRONMENT_VARIABLE} names it): it "
            "cannot be restarted here"
        )
    _restarts[dsn]()


@contextlib.contextmanager
def running_server(*, flush_commits: bool = False) -> Iterator[str]:
    """The conninfo of a PostgreSQL server for the length of the block (a new one, or the one
    ``DURABLE_TEST_POSTGRES`` names). A new one skips flushing its commits to disk unless
    `flush_commits` (benchmarks measure with PostgreSQL's durable defaults)."""
    given = os.environ.get(ENVIRONMENT_VARIABLE)
    if given:
        yield given
        return
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    directory = Path(tempfile.mkdtemp(prefix="durable-pg-"))
    # PostgreSQL refuses to run as root: as root, the postgres system user runs it.
    as_user = None
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(directory, account.pw_uid, account.pw_gid)
        as_user = account.pw_uid, account.pw_gid

    def run(command: list[str]) -> None:
        def drop_root() -> None:
            if as_user is not None:
                os.setgid(as_user[1])
                os.setuid(as_user[0])

        done = subprocess.run(
            command, preexec_fn=drop_root, capture_output=True, text=True, cwd=directory
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")

    data, port = directory / "data", _free_port()
    run([initdb, "-D", str(data), "-A", "trust", "-U", USER, "-E", "UTF8", "--no-sync"])
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
    if not flush_commits:
        # The durability of the server itself is not under test (its clients are killed,
        # never it): commits need not wait for a disk flush.
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    run([pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"])
    dsn = f"host=127.0.0.1 port={port} user={USER} dbname=postgres"
    # Fast shutdown ends every connection, as a server restarted by its operator does.
    _restarts[dsn] = lambda: run(
        [pg_ctl, "-D", str(data), "-l", str(directory / "log"), "-m", "fast", "-w", "restart"]
    )
    try:
        yield dsn
    finally:
        _restarts.pop(dsn, None)
        run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(directory, ignore_errors=True)
