"""The context variables of the package: the durable run active in this task, and the
fan-out member (`fanout.Slot`) the task runs, if any."""

from __future__ import annotations

import contextvars
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runtime import InstanceRun

_current_run: ContextVar[InstanceRun | None] = ContextVar("durable_current_run", default=None)
_current_slot: ContextVar[Any] = ContextVar("durable_current_slot", default=None)


def current_slot() -> Any:
    return _current_slot.get()


def current_run() -> InstanceRun | None:
    return _current_run.get()


def enter_run(run: InstanceRun) -> contextvars.Token[InstanceRun | None]:
    return _current_run.set(run)


def leave_run(token: contextvars.Token[InstanceRun | None]) -> None:
    _current_run.reset(token)
