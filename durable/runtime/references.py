"""Module globals and default values stay references through a snapshot.

Durable code reads module globals live, so a snapshot must not copy them: an object that a
frame holds and that is also a module-level value of that frame's module (or a default
argument value of its function) is pickled as a reference and found again on load — the same
object in this process, the module's new object after a restart.
"""

from __future__ import annotations

import importlib
import io
import pickle
import types
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._errors import IncompatibleStateError

if TYPE_CHECKING:
    from .program import DurableProgram

#: Values that are the same after a copy, or that cloudpickle already pickles by name.
_BY_VALUE = (
    int, float, complex, str, bytes, bool, type(None), tuple, frozenset, range,
    type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
)  # fmt: skip


def reference_table(programs: list[DurableProgram]) -> dict[int, tuple]:
    """id(object) -> how to find it again, for the globals and defaults the programs use."""
    from .program import DurableProgram

    table: dict[int, tuple] = {}
    for program in programs:
        code = program.code
        module_globals = code.function.__globals__
        module = module_globals.get("__name__")
        for name in code.global_names:
            value = module_globals.get(name)
            if value is not None and not isinstance(value, _BY_VALUE + (DurableProgram,)):
                table.setdefault(id(value), ("global", module, name))
        original = program.__wrapped__
        for index, value in enumerate(original.__defaults__ or ()):
            if not isinstance(value, _BY_VALUE):
                table.setdefault(id(value), ("default", program.key, index))
        for name, value in (original.__kwdefaults__ or {}).items():
            if not isinstance(value, _BY_VALUE):
                table.setdefault(id(value), ("kwdefault", program.key, name))
    return table


class _Pickler(cloudpickle.CloudPickler):
    def __init__(self, file: io.BytesIO, table: dict[int, tuple]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._table = table

    def persistent_id(self, obj: Any) -> tuple | None:
        return self._table.get(id(obj))


class _Unpickler(pickle.Unpickler):
    def persistent_load(self, reference: tuple) -> Any:
        kind, owner, name = reference
        if kind == "global":
            try:
                return getattr(importlib.import_module(owner), name)
            except (ImportError, AttributeError) as error:
                raise IncompatibleStateError(
                    f"saved state refers to the module global {owner}.{name}, which cannot be "
                    f"found ({error})"
                ) from None
        from .program import program_for_key

        original = program_for_key(owner).__wrapped__
        if kind == "default":
            return original.__defaults__[name]
        return original.__kwdefaults__[name]


def dumps(value: Any, programs: list[DurableProgram]) -> bytes:
    table = reference_table(programs)
    if not table:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    buffer = io.BytesIO()
    _Pickler(buffer, table).dump(value)
    return buffer.getvalue()


def loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()
