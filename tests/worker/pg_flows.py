"""Flows for the multi-worker tests over PostgreSQL: each step's side effect is a row of a
ledger table naming the instance, the step, the worker process and the fencing token of the
lease its run held, and its reconciler looks for that row."""

from __future__ import annotations

import functools
import os

import psycopg

from durable import NotApplied, durable_execute, make_durable
from durable.runtime.context import current_run

#: (process, conninfo) -> the ledger connection of this process.
_connections: dict[tuple[int, str], psycopg.Connection] = {}


def _ledger(dsn: str) -> psycopg.Connection:
    key = (os.getpid(), dsn)
    if key not in _connections:
        _connections[key] = psycopg.connect(dsn, autocommit=True)
    return _connections[key]


def create_ledger(dsn: str, table: str) -> None:
    _ledger(dsn).execute(
        f"CREATE TABLE {table} (instance_id text NOT NULL, step integer NOT NULL, "
        "pid integer NOT NULL, fence bigint, at timestamptz NOT NULL DEFAULT clock_timestamp())"
    )


def effect(dsn: str, table: str, step: int) -> str:
    """The side effect: one ledger row, with the fencing token of this run's lease."""
    run = current_run()
    fence = run.backend.store.fencing_token(run.instance_id)
    _ledger(dsn).execute(
        f"INSERT INTO {table} (instance_id, step, pid, fence) VALUES (%s, %s, %s, %s)",
        (run.instance_id, step, os.getpid(), fence),
    )
    return f"{run.instance_id}:{step}"


def find_effect(dsn: str, table: str, instance_id: str, step: int) -> str:
    """Reconciler of `effect`: its result when its row is in the ledger, else NotApplied."""
    row = (
        _ledger(dsn)
        .execute(f"SELECT 1 FROM {table} WHERE instance_id = %s AND step = %s", (instance_id, step))
        .fetchone()
    )
    if row is None:
        raise NotApplied(f"{instance_id} step {step} is not in the ledger")
    return f"{instance_id}:{step}"


@make_durable
async def reconciled_steps(dsn: str, table: str, instance_id: str, steps: int) -> list[str]:
    done = []
    for step in range(steps):
        reconciler = functools.partial(find_effect, dsn, table, instance_id, step)
        done.append(await durable_execute(effect, dsn, table, step, reconciler=reconciler))
    return done
