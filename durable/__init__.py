"""durable: plain ``async def`` functions that survive crashes, restarts and long pauses.

``make_durable(fn)`` compiles a function into a resumable program; each call runs or resumes
one instance, which checkpoints its call stack and resumes mid-function from the last one.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

# isort: split

from ._errors import (
    AlreadyDurableException,
    ArgumentsMismatchError,
    Cancelled,
    CheckpointException,
    CorruptStateError,
    Diagnostic,
    DurableCompileError,
    DurableError,
    EventTimeoutError,
    IncompatibleStateError,
    InstanceBusyError,
    InstanceEndedError,
    InstanceSleeping,
    LeaseLostError,
    NoSourceCodeException,
    PauseForEventException,
    StateFormatError,
    StateTooLargeError,
)
from .runtime.backend import (
    DurableBackend,
    Event,
    OrchestrationBackend,
    default_backend,
)
from .runtime.contexts import resumable
from .runtime.fanout import first
from .runtime.frames import CallStack, FunctionCall
from .runtime.handles import InstanceHandle, InstanceInfo, list_instances, prune_instances
from .runtime.helpers import exclude_helpers, include_helpers
from .runtime.journal import JournalPolicy, NotApplied, RetryPolicy
from .runtime.operations import (
    durable_execute,
    durable_execute_async,
    sleep,
    step,
    wait_for_event,
)
from .runtime.out_of_line import Stored
from .runtime.program import DurableProgram, make_durable
from .runtime.runtime import DurableRuntime
from .stores import (
    DiskStateStore,
    InMemoryStateStore,
    PostgresStateStore,
    SQLiteStateStore,
    StateStore,
    store_from_url,
)
from .transform import DurableAstTransformer, transform_to_durable_ast
from .worker import Worker

if _TYPE_CHECKING:
    from .transform.pipeline import CodeBlock

__all__ = [
    "AlreadyDurableException",
    "ArgumentsMismatchError",
    "CallStack",
    "Cancelled",
    "CheckpointException",
    "CodeBlock",
    "CorruptStateError",
    "Diagnostic",
    "DiskStateStore",
    "DurableAstTransformer",
    "DurableBackend",
    "DurableCompileError",
    "DurableError",
    "DurableProgram",
    "DurableRuntime",
    "Event",
    "EventTimeoutError",
    "FunctionCall",
    "InMemoryStateStore",
    "IncompatibleStateError",
    "InstanceBusyError",
    "InstanceEndedError",
    "InstanceHandle",
    "InstanceInfo",
    "InstanceSleeping",
    "JournalPolicy",
    "LeaseLostError",
    "NoSourceCodeException",
    "NotApplied",
    "OrchestrationBackend",
    "PauseForEventException",
    "PostgresStateStore",
    "RetryPolicy",
    "SQLiteStateStore",
    "StateFormatError",
    "StateStore",
    "StateTooLargeError",
    "Stored",
    "Worker",
    "default_backend",
    "durable_execute",
    "durable_execute_async",
    "exclude_helpers",
    "first",
    "include_helpers",
    "list_instances",
    "make_durable",
    "prune_instances",
    "resumable",
    "sleep",
    "step",
    "store_from_url",
    "transform_to_durable_ast",
    "wait_for_event",
]


def __getattr__(name: str) -> _Any:
    # Read on first use: `__version__` from the distribution's metadata (see `_version`), and
    # `CodeBlock` from the compiler, which imports libcst (a process that only reads stored
    # state, as most commands do, never compiles).
    if name == "__version__":
        from ._version import package_version

        version = globals()["__version__"] = package_version()
        return version
    if name == "CodeBlock":
        from .transform.pipeline import CodeBlock

        globals()["CodeBlock"] = CodeBlock
        return CodeBlock
    raise AttributeError(f"module 'durable' has no attribute {name!r}")
