"""The one context variable of the package: the durable run active in this task, if any."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .runtime import InstanceRun

_current_run: ContextVar[InstanceRun | None] = ContextVar("durable_current_run", default=None)


def current_run() -> InstanceRun | None:
    return _current_run.get()


def enter_run(run: InstanceRun):
    return _current_run.set(run)


def leave_run(token) -> None:
    _current_run.reset(token)
