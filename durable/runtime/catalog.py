"""The durable programs saved state names, found again in a new process by their
``module:qualname`` key (importing the module if needed)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._errors import IncompatibleStateError

if TYPE_CHECKING:
    from .program import DurableProgram

_programs: dict[str, DurableProgram] = {}


def registered_keys() -> list[str]:
    """The keys of every program made in this process so far."""
    return list(_programs)


def register(program: DurableProgram) -> None:
    """Make `program` findable by its key (the last one made under a key wins)."""
    _programs[program.key] = program


def program_for_key(key: str) -> DurableProgram:
    """The registered program `module:qualname`, importing its module if needed."""
    program = _programs.get(key)
    if program is None:
        module = key.partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError as error:
            raise IncompatibleStateError(
                f"saved state refers to durable function {key!r}, but its module cannot be "
                f"imported ({error})"
            ) from None
        program = _programs.get(key)
    if program is None:
        raise IncompatibleStateError(
            f"saved state refers to durable function {key!r}, which no longer exists; import "
            "the module that defines it, or restore the function under that name"
        )
    return program
