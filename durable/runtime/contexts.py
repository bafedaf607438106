"""Context managers inside durable functions: `resumable(...)` and the re-entry protocol.

A `with` (or `async with`) block that holds a checkpoint must opt in by wrapping its manager:
``with durable.resumable(manager) as value:``. The manager is saved with the instance, so it
must be picklable. Resuming inside the block calls ``manager.__durable_reenter__()`` (async:
``__durable_reenter_async__()``) when the manager defines it, else ``__enter__()``
(``__aenter__()``) again, and binds the ``as`` target to the result. ``__exit__`` runs once,
when the block is really left; never when a run stops at a checkpoint inside it.
"""

from __future__ import annotations

from typing import Any, TypeVar

Manager = TypeVar("Manager")


def resumable(manager: Manager) -> Manager:
    """Mark a context manager as safe to re-enter after a resume (see module docstring)."""
    synchronous = hasattr(manager, "__enter__") and hasattr(manager, "__exit__")
    asynchronous = hasattr(manager, "__aenter__") and hasattr(manager, "__aexit__")
    if not (synchronous or asynchronous):
        raise TypeError(
            f"resumable() needs a context manager (with __enter__/__exit__ or "
            f"__aenter__/__aexit__), got {type(manager).__name__}"
        )
    return manager


def enter_context(manager: Any) -> Any:
    return manager.__enter__()


def exit_context(manager: Any, error: BaseException | None) -> Any:
    if error is None:
        return manager.__exit__(None, None, None)
    return manager.__exit__(type(error), error, error.__traceback__)


def reenter_context(manager: Any) -> Any:
    reenter = getattr(manager, "__durable_reenter__", None)
    return reenter() if reenter is not None else manager.__enter__()


async def enter_context_async(manager: Any) -> Any:
    return await manager.__aenter__()


async def exit_context_async(manager: Any, error: BaseException | None) -> Any:
    if error is None:
        return await manager.__aexit__(None, None, None)
    return await manager.__aexit__(type(error), error, error.__traceback__)


async def reenter_context_async(manager: Any) -> Any:
    reenter = getattr(manager, "__durable_reenter_async__", None)
    return await (reenter() if reenter is not None else manager.__aenter__())
