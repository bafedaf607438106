"""Handles: a started instance seen from anywhere — its status, and its result once it ends.

A handle only reads stored state, so it works from another process (over the same store) and
never disturbs the run it watches.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING, Any

from .._errors import DurableError
from .._ids import validate_instance_id
from . import references
from .runtime import COMPLETED, FAILED, answered

if TYPE_CHECKING:
    from .backend import OrchestrationBackend


class InstanceHandle:
    """One instance of a durable function in one backend (``program.start`` returns one)."""

    def __init__(self, instance_id: str, backend: OrchestrationBackend) -> None:
        self.instance_id = validate_instance_id(instance_id)
        self.backend = backend

    def __repr__(self) -> str:
        return f"<InstanceHandle {self.instance_id!r} in {self.backend!r}>"

    def status(self) -> str | None:
        """``enqueued``, ``running``, ``waiting``, ``completed``, ``failed``, or None for an
        instance the backend does not know."""
        state = self.backend.read_state(self.instance_id)
        if inspect.isawaitable(state):
            state.close()
            raise TypeError(
                f"{type(self.backend).__name__}.read_state is async: use "
                "'await handle.status_async()'"
            )
        return None if state is None else state["status"]

    async def status_async(self) -> str | None:
        """`status`, for any backend (one whose methods are async too)."""
        state = await answered(self.backend.read_state(self.instance_id))
        return None if state is None else state["status"]

    def done(self) -> bool:
        return self.status() in (COMPLETED, FAILED)

    async def result(self, *, timeout: float | None = None, poll_interval: float = 0.05) -> Any:
        """Wait until the instance ends, then return its result or raise its exception.

        The instance is run elsewhere (a call of the program, a worker); this only watches
        the store, every `poll_interval` seconds. `TimeoutError` after `timeout` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = await answered(self.backend.read_state(self.instance_id))
            if state is None:
                raise DurableError(
                    f"instance {self.instance_id!r} does not exist in {self.backend!r}; start "
                    "it first (program.start(..., instance_id=...))"
                )
            if state["status"] == COMPLETED:
                return references.loads(state["result"])
            if state["status"] == FAILED:
                raise references.loads(state["error"])
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"instance {self.instance_id!r} is still {state['status']} after "
                    f"{timeout} s"
                )
            await asyncio.sleep(poll_interval)
