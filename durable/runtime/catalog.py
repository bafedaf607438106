"""The durable programs saved state names, found again in a new process by their
``module:qualname`` key (importing the module if needed)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import IncompatibleStateError

if TYPE_CHECKING:
    from .program import DurableProgram

_programs: dict[str, DurableProgram[..., Any]] = {}


def registered_keys() -> list[str]:
    """The keys of every program made in this process so far."""
    return list(_programs)


def importable_name(module: str) -> str:
    """The name another process imports `module` by. A script run as ``__main__`` is
    imported by a worker under its real name: the module ``python -m`` ran, else the file's
    name (``python agent.py`` defines ``agent``). ``__main__`` stays itself only where
    there is no file (``python -c``, a notebook, the REPL)."""
    if module != "__main__":
        return module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return spec.name
    file = getattr(main, "__file__", None)
    if file:
        stem = Path(file).stem
        if stem.isidentifier():
            return stem
    return module


def register(program: DurableProgram[..., Any]) -> None:
    """Make `program` findable by its key (the last one made under a key wins)."""
    _programs[program.key] = program


def program_for_key(key: str) -> DurableProgram[..., Any]:
    """The registered program `module:qualname`, importing its module if needed."""
    program = _programs.get(key)
    if program is None:
        module = key.partition(":")[0]
        if module == "__main__":
            raise IncompatibleStateError(
                f"saved state refers to durable function {key!r}, defined in the __main__ of a "
                "process with no module file (python -c, a notebook, the REPL) or started by an "
                "earlier version from a script; no other process can import it. Define the "
                "function in a module (a file you can import) and start the instance from there"
            )
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
