"""How state is pickled: module globals stay references, exceptions keep their history.

Durable code reads module globals live, so a snapshot must not copy them: an object that a
frame holds and that is also a module-level value of that frame's module (or a default
argument value of its function) is pickled as a reference and found again on load — the same
object in this process, the module's new object after a restart.

CPython pickles an exception as its arguments only; here it also keeps `__cause__`,
`__context__`, `__suppress_context__` and its traceback as text, shown as a note.
"""

from __future__ import annotations

import gc
import importlib
import inspect
import io
import marshal
import operator
import pickle
import sys
import threading
import traceback
import types
from typing import TYPE_CHECKING, Any

import cloudpickle

from .._errors import CorruptStateError, DurableError, IncompatibleStateError
from . import out_of_line as out_of_line_settings
from .catalog import importable_name, program_for_key
from .out_of_line import Blob, OutOfLine, goes_out_of_line, object_of

if TYPE_CHECKING:
    from .frames import FunctionCall

#: Types whose values are the same after a copy, or that are pickled by name anyway
#: (classes too, whatever their metaclass).
_BY_VALUE_TYPES = frozenset({
    int, float, complex, str, bytes, bool, type(None), tuple, frozenset, range,
    types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
})  # fmt: skip


def reference_table(frames: list[FunctionCall]) -> dict[int, tuple[Any, ...]]:
    """id(object) -> how to find it again, for the globals and defaults the frames' code
    uses (defaults of durable programs; a helper's are bound into its arguments)."""
    table: dict[int, tuple[Any, ...]] = {}
    for frame in frames:
        code = frame.code
        module_globals = code.function.__globals__
        module = importable_name(code.module)
        for name in code.global_names:
            value = module_globals.get(name)
            if type(value) not in _BY_VALUE_TYPES and not _named(value):
                table.setdefault(id(value), ("global", module, name))
        program = frame.program
        saved_as = program.saved_as
        if type(saved_as) is types.FunctionType:
            named = script_name(saved_as)
            if named is not None:  # a script's helper
                table.setdefault(id(saved_as), ("function", *named))
        if isinstance(saved_as, str):
            prefix = ""
        elif program.saved_by_name:
            prefix = "helper-"  # found again by module and qualified name
        else:
            continue  # a local helper is restored with its defaults, shared in the snapshot
        original = program.__wrapped__
        if original.__defaults__:
            for index, value in enumerate(original.__defaults__):
                if type(value) not in _BY_VALUE_TYPES and not _named(value):
                    table.setdefault(id(value), (prefix + "default", program.key, index))
        if original.__kwdefaults__:
            for name, value in original.__kwdefaults__.items():
                if type(value) not in _BY_VALUE_TYPES and not _named(value):
                    table.setdefault(id(value), (prefix + "kwdefault", program.key, name))
    return table


def find_by_name(module: str, qualname: str) -> Any:
    """What ``module.qualname`` names, importing the module (AttributeError if nothing). In
    the script that defines it, a script's module is the running ``__main__`` (not imported
    a second time)."""
    holder: Any = sys.modules.get(module)
    if holder is None:
        if module != "__main__" and importable_name("__main__") == module:
            holder = sys.modules["__main__"]
        else:
            holder = importlib.import_module(module)
    for part in qualname.split("."):
        holder = getattr(holder, part)
    return holder


def _named_now(function: types.FunctionType) -> Any:
    """What ``module.qualname`` of `function` names in its loaded module now, or None."""
    if "<locals>" in function.__qualname__:
        return None
    holder: Any = sys.modules.get(function.__module__)
    for part in function.__qualname__.split("."):
        holder = getattr(holder, part, None)
    return holder


def script_name(function: types.FunctionType) -> tuple[str, str] | None:
    """(module, qualname) a worker finds `function` by, for a function of a script run as
    ``__main__`` (which pickle would name ``__main__``, the worker's own); else None."""
    if function.__module__ != "__main__":
        return None
    module = importable_name("__main__")
    return None if module == "__main__" else (module, function.__qualname__)


def findable(function: types.FunctionType) -> bool:
    """Whether pickle finds `function` again by its module and qualified name."""
    return _named_now(function) is function


def _named(value: Any) -> bool:
    """Classes and durable programs: pickled by name, never as a reference."""
    return isinstance(value, _NAMED_TYPES)


#: Pickled by name; `DurableProgram` adds itself (it sits above this module).
_NAMED_TYPES: tuple[type, ...] = (type,)


def pickle_by_name(kind: type) -> None:
    """Pickle every `kind` by name, never by reference (durable programs)."""
    global _NAMED_TYPES
    if kind not in _NAMED_TYPES:
        _NAMED_TYPES = (*_NAMED_TYPES, kind)


TRACEBACK_NOTE = "Traceback before the durable checkpoint (most recent call last):\n"


class _Pickler(cloudpickle.CloudPickler):
    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, BaseException):
            return _reduce_exception(obj)
        kind = type(obj)
        if kind is types.FunctionType:
            if findable(obj):
                named = script_name(obj)
                return NotImplemented if named is None else (find_by_name, named)
            reduced = _reduce_wrapped_function(obj) or _reduce_function_by_value(obj)
            if reduced is not None:
                return reduced
        elif kind is types.CellType:
            return _reduce_cell(obj)
        elif kind is types.CodeType:
            return _reduce_code(obj)
        elif kind is types.CoroutineType:
            return reduce_coroutine(obj)
        return super().reducer_override(obj)


def function_of(coroutine: types.CoroutineType[Any, Any, Any]) -> types.FunctionType | None:
    """The function that created `coroutine`: CPython keeps it in the coroutine's frame
    (and reports it to the garbage collector, the one way to reach it from Python)."""
    code = coroutine.cr_code
    for referent in gc.get_referents(coroutine):
        if type(referent) is types.FunctionType and referent.__code__ is code:
            return referent
    return None  # not a function's coroutine (built from code directly)


def reduce_coroutine(coroutine: types.CoroutineType[Any, Any, Any]) -> tuple[Any, ...]:
    """A coroutine made and not awaited yet (`task = fetch(order)` before a checkpoint,
    awaited after it) is saved as its function and the arguments it was called with: the
    resumed run calls the function again to make the same coroutine, still not started."""
    state = inspect.getcoroutinestate(coroutine)
    if state == inspect.CORO_CLOSED:
        # Awaited already (or closed): a container of coroutines awaited in turn (`for c in
        # coros: await c`) still holds the one whose helper frame is at this checkpoint, and
        # those before it. A closed coroutine has no state left; it is saved as one.
        return (_closed_coroutine, (coroutine.__name__, coroutine.__qualname__))
    function = function_of(coroutine)
    if function is None or state != inspect.CORO_CREATED:
        raise TypeError(
            f"cannot pickle the coroutine of {coroutine.cr_code.co_qualname}(), which has "
            "started; await it before the checkpoint, or create it after"
        )
    code = function.__code__
    values = coroutine.cr_frame.f_locals
    names = code.co_varnames
    count, keyword_only = code.co_argcount, code.co_kwonlyargcount
    positional = [values[name] for name in names[:count]]
    keywords = {name: values[name] for name in names[count : count + keyword_only]}
    extra = count + keyword_only
    if code.co_flags & inspect.CO_VARARGS:
        positional += values[names[extra]]
        extra += 1
    if code.co_flags & inspect.CO_VARKEYWORDS:
        keywords.update(values[names[extra]])
    return (_call, (function, tuple(positional), keywords))


def _call(function: Any, arguments: tuple[Any, ...], keywords: dict[Any, Any]) -> Any:
    return function(*arguments, **keywords)


def _closed_coroutine(name: str, qualname: str) -> types.CoroutineType[Any, Any, None]:
    """A closed coroutine named as the saved one: awaiting it raises the RuntimeError that
    awaiting the original again would."""

    async def spent() -> None:
        pass

    coroutine = spent()
    coroutine.__name__, coroutine.__qualname__ = name, qualname
    coroutine.close()
    return coroutine


def _reduce_code(code: types.CodeType) -> tuple[Any, ...]:
    """Code as `marshal` writes it: every field kept, its file name too (cloudpickle drops
    that, so tracebacks and reading the source again would lose the user's file). Saved
    state is tied to one Python minor version anyway (see code fingerprints)."""
    return (marshal.loads, (marshal.dumps(code),))


def _reduce_cell(cell: types.CellType) -> tuple[Any, ...]:
    """A cell is made empty and remembered before its contents are pickled, so every
    closure and frame that shares it shares it again after loading (cloudpickle gives each
    function fresh cells), and a cell holding a function whose closure holds the cell works."""
    try:
        contents = cell.cell_contents
    except ValueError:
        return (types.CellType, ())
    return (types.CellType, (), (contents,), None, None, _fill_cell)


def _fill_cell(cell: types.CellType, state: tuple[Any, ...]) -> None:
    cell.cell_contents = state[0]


def _reduce_function_by_value(function: types.FunctionType) -> tuple[Any, ...] | None:
    """A function that cannot be found by name (a lambda, a local function) as its code,
    its closure cells (shared, see `_reduce_cell`) and a reference to its module, whose
    globals it reads live after loading — cloudpickle would give it copies of them."""
    module = sys.modules.get(function.__module__)
    if module is None or vars(module) is not function.__globals__:
        return None
    state = (
        function.__qualname__,
        function.__defaults__,
        function.__kwdefaults__,
        function.__dict__ or None,
        function.__doc__,
        function.__annotations__ or None,
    )
    return (
        _make_function,
        (function.__code__, function.__module__, function.__name__, function.__closure__),
        state,
        None,
        None,
        _fill_function,
    )


def _make_function(
    code: types.CodeType, module: str, name: str, closure: tuple[Any, ...] | None
) -> types.FunctionType:
    try:
        namespace = vars(importlib.import_module(module))
    except ImportError as error:
        raise IncompatibleStateError(
            f"saved state holds the function {name!r} of module {module!r}, which cannot be "
            f"imported ({error})"
        ) from None
    return types.FunctionType(code, namespace, name, None, closure)


def _fill_function(function: types.FunctionType, state: tuple[Any, ...]) -> None:
    qualname, defaults, kwdefaults, attributes, doc, *rest = state
    function.__qualname__ = qualname
    function.__defaults__ = defaults
    function.__kwdefaults__ = kwdefaults
    function.__doc__ = doc
    if rest and rest[0]:  # annotations (states saved before they were kept have none)
        function.__annotations__ = rest[0]
    if attributes:
        function.__dict__.update(attributes)


def _reduce_wrapped_function(function: types.FunctionType) -> tuple[Any, ...] | None:
    """A module-level function its module only holds wrapped (``@durable.step``, any
    ``functools.wraps`` decorator) is found again through the wrapper, not copied: a copy
    would carry copies of the module globals it uses."""
    holder = _named_now(function)
    if holder is function or getattr(holder, "__wrapped__", None) is not function:
        return None
    return (_unwrap, (function.__module__, function.__qualname__))


def _unwrap(module: str, qualname: str) -> Any:
    return find_by_name(module, qualname).__wrapped__


class _ReferencingPickler(_Pickler):
    def __init__(
        self,
        file: io.BytesIO,
        table: dict[int, tuple[Any, ...]],
        out_of_line: OutOfLine | None = None,
    ) -> None:
        super().__init__(file)
        self._table = table
        self._out_of_line = out_of_line

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        reference = self._table.get(id(obj))
        if reference is None and self._out_of_line is not None and goes_out_of_line(obj):
            return ("blob", self._out_of_line.key_of(obj))
        return reference


def _reduce_exception(error: BaseException) -> tuple[Any, ...]:
    text = getattr(error, "__durable_traceback__", None)
    if error.__traceback__ is not None:
        text = "".join(traceback.format_tb(error.__traceback__))
    history = (error.__cause__, error.__context__, error.__suppress_context__, text)
    return (_rebuild_exception, (error.__reduce_ex__(pickle.HIGHEST_PROTOCOL), history))


def _rebuild_exception(reduced: tuple[Any, ...], history: tuple[Any, ...]) -> BaseException:
    factory, arguments, *rest = reduced
    try:
        error = factory(*arguments)
    except TypeError:
        # An exception class whose __init__ takes other arguments than it passes on to
        # BaseException (which keeps only those in `args`): made without calling __init__,
        # as the state below restores every attribute __init__ set.
        if not (isinstance(factory, type) and issubclass(factory, BaseException)):
            raise
        error = factory.__new__(factory, *arguments)
        error.args = arguments
    state = rest[0] if rest else None
    if state:
        if hasattr(error, "__setstate__"):
            error.__setstate__(state)
        else:
            error.__dict__.update(state)
    error.__cause__, error.__context__, error.__suppress_context__, text = history
    if text:
        error.__durable_traceback__ = text
        note = TRACEBACK_NOTE + text.rstrip("\n")
        if note not in getattr(error, "__notes__", ()):
            error.add_note(note)
    return error


class _Unpickler(pickle.Unpickler):
    def __init__(
        self,
        file: io.BytesIO,
        blobs: dict[int, Blob] | None = None,
        out_of_line: OutOfLine | None = None,
    ) -> None:
        super().__init__(file)
        self._blobs = blobs
        self._out_of_line = out_of_line

    def persistent_load(self, reference: tuple[Any, ...]) -> Any:
        if reference[0] == "blob":
            return blob_object(reference[1], self._blobs, self._out_of_line)
        kind, owner, name = reference
        if kind in ("global", "function"):
            try:
                return find_by_name(owner, name)
            except (ImportError, AttributeError) as error:
                what = "module global" if kind == "global" else "function"
                raise IncompatibleStateError(
                    f"saved state refers to the {what} {owner}.{name}, which cannot be found "
                    f"({error}); a worker must import the module that defines it"
                ) from None
        if kind.startswith("helper-"):
            try:
                original = find_by_name(*owner.split(":", 1))
            except (ImportError, AttributeError) as error:
                raise IncompatibleStateError(
                    f"saved state refers to a default value of the helper {owner!r}, which "
                    f"cannot be found ({error})"
                ) from None
            kind = kind.removeprefix("helper-")
        else:
            original = program_for_key(owner).__wrapped__
        if kind == "default":
            return original.__defaults__[name]
        return original.__kwdefaults__[name]


class _ExceptionReducers(dict):
    """A pickler dispatch table giving every exception type `_reduce_exception`: the C
    pickler consults it only for objects outside its built-in fast paths."""

    def __missing__(self, kind: type) -> Any:
        if issubclass(kind, BaseException):
            self[kind] = _reduce_exception
            return _reduce_exception
        if issubclass(kind, type):
            raise KeyError(kind)  # a metaclass: its classes are pickled by name
        # What the pickler does without a table, remembered so the next lookup is C-only.
        self[kind] = _default_reduce
        return _default_reduce


_default_reduce = operator.methodcaller("__reduce_ex__", pickle.HIGHEST_PROTOCOL)


RANGE_ITERATOR = type(iter(range(0)))


def range_numbers(iterator: Any) -> tuple[int, int, int, int]:
    """(start, stop, step, position) of a range iterator: `range_iterator` rebuilds it."""
    reduced = iterator.__reduce__()
    numbers = reduced[1][0]
    position = reduced[2] if len(reduced) > 2 else len(numbers)
    if position is None:
        # Python 3.12 and later reduce to the range still to come, from its start.
        position = 0
    return (numbers.start, numbers.stop, numbers.step, position)


def _reduce_range_iterator(iterator: Any) -> tuple[Any, ...]:
    # CPython writes `iter(range(...))` plus a position, naming two builtins, which costs
    # the pickler more than the rest of a small snapshot: one function of ours and ints.
    return (range_iterator, range_numbers(iterator))


def range_iterator(start: int, stop: int, step: int, position: int) -> Any:
    iterator = iter(range(start, stop, step))
    iterator.__setstate__(position)
    return iterator


def _reduce_sequence_iterator(iterator: Any) -> tuple[Any, ...]:
    reduced = iterator.__reduce__()
    position = reduced[2] if len(reduced) > 2 else None
    return (_sequence_iterator, (reduced[1][0], position))


def _sequence_iterator(sequence: Any, position: int | None) -> Any:
    iterator = iter(sequence)
    if position is None:
        for _ in iterator:
            pass
    else:
        iterator.__setstate__(position)
    return iterator


class _FastPickler(pickle.Pickler):
    dispatch_table = _ExceptionReducers(
        {
            RANGE_ITERATOR: _reduce_range_iterator,
            type(iter([])): _reduce_sequence_iterator,
            type(iter(())): _reduce_sequence_iterator,
            types.CellType: _reduce_cell,
            types.CoroutineType: reduce_coroutine,
        }
    )


class _FastReferencingPickler(_FastPickler):
    def __init__(self, file: io.BytesIO, table: dict[int, tuple[Any, ...]]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._table = table

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        return self._table.get(id(obj))


class _FastOutOfLinePickler(_FastPickler):
    """Large strings and bytes as references to blobs of `out_of_line`. Called for every
    object the state holds, so kept short: strings and bytes are never in the reference
    table (`_BY_VALUE_TYPES`)."""

    def __init__(
        self, file: io.BytesIO, table: dict[int, tuple[Any, ...]], out_of_line: OutOfLine
    ) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._table = table
        self._key_of = out_of_line.key_of
        self._min_size = out_of_line_settings.MIN_SIZE

    def persistent_id(self, obj: Any) -> tuple[Any, ...] | None:
        kind = type(obj)
        if kind is str or kind is bytes:
            return ("blob", self._key_of(obj)) if len(obj) >= self._min_size else None
        table = self._table
        return table.get(id(obj)) if table else None


def blob_object(
    key: Any, blobs: dict[int, Blob] | None, out_of_line: OutOfLine | None
) -> str | bytes:
    """The string or bytes a snapshot's reference to blob `key` stands for: the object of
    `out_of_line` (made from its stored blob once), or made from `blobs`."""
    value = out_of_line.object_of(key) if out_of_line is not None else None
    if value is not None:
        return value
    if blobs is None:
        raise DurableError(
            "the saved state refers to large values kept beside its snapshot, in the "
            "state's 'blobs': read it with them (saved_frames(state['snapshot'], loads, "
            "state['blobs']), or handle.frames())"
        )
    blob = blobs.get(key)
    if blob is None:
        raise CorruptStateError(
            f"the saved state refers to the large value {key!r}, which the state does not "
            "hold; restore the store from a backup, or delete the instance"
        )
    return object_of(blob)


_reusable = threading.local()


def _fast_dumps(value: Any) -> bytes:
    """The C pickler, one per thread, reused: creating one costs as much as a small dump."""
    reusable = getattr(_reusable, "pickler", None)
    if reusable is None:
        buffer = io.BytesIO()
        reusable = _reusable.pickler = (
            _FastPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL),
            buffer,
        )
    pickler, buffer = reusable
    buffer.seek(0)
    buffer.truncate()
    pickler.clear_memo()
    pickler.dump(value)
    return buffer.getvalue()


def dumps(
    value: Any, frames: list[FunctionCall] = (), out_of_line: OutOfLine | None = None
) -> bytes:
    """Pickle `value` (in one pass, so shared objects stay shared) for durable state; with
    `out_of_line`, large strings and bytes as references to its blobs.

    The C pickler goes first; what it cannot pickle by reference (lambdas, local functions
    and classes, functions a decorator wraps) makes the whole value go through cloudpickle.
    """
    table = reference_table(list(frames)) if frames else {}
    referencing = bool(table) or out_of_line is not None
    try:
        if out_of_line is not None:
            out_of_line.begin()
            buffer = io.BytesIO()
            _FastOutOfLinePickler(buffer, table, out_of_line).dump(value)
            return buffer.getvalue()
        if table:
            buffer = io.BytesIO()
            _FastReferencingPickler(buffer, table).dump(value)
            return buffer.getvalue()
        return _fast_dumps(value)
    except Exception:
        buffer = io.BytesIO()
    if out_of_line is not None:
        out_of_line.begin()
    pickler = _ReferencingPickler(buffer, table, out_of_line) if referencing else _Pickler(buffer)
    pickler.dump(value)
    return buffer.getvalue()


def loads(
    data: bytes,
    blobs: dict[int, Blob] | None = None,
    out_of_line: OutOfLine | None = None,
) -> Any:
    """The value `dumps` pickled; its references to large values are found in `blobs` (and
    made the objects of `out_of_line`, so that they are not written again)."""
    return _Unpickler(io.BytesIO(data), blobs, out_of_line).load()


def pickle_error(error: BaseException) -> bytes:
    """The exception itself when it survives a pickle round trip, else a faithful summary."""
    try:
        blob = dumps(error)
        loads(blob)
        return blob
    except Exception:
        summary = DurableError(f"{type(error).__module__}.{type(error).__qualname__}: {error}")
        return dumps(summary)
