"""Looking at pickled state without running it: `safe_loads` rebuilds plain data and names,
without importing or calling, every other object a pickle holds (`durable status` uses it)."""

from __future__ import annotations

import _compat_pickle
import collections
import datetime
import decimal
import io
import pickle
import pickletools
from typing import Any

from .out_of_line import object_of

__all__ = ["ALLOWED", "UnloadedClass", "is_unloaded", "safe_loads", "unloaded_names"]


class UnloadedClass(type):
    """A placeholder: what a pickle named (`unloaded_name`) and, once called, the call it
    would have made, recorded and not made. Every placeholder is a class, so that a call's
    result can be instantiated again (NEWOBJ takes only classes): calling one, its
    ``__new__``, ``__setstate__`` (BUILD), appends, adds and item sets (what the unpickler
    does to a value it builds) all record what they are given and run nothing."""

    # The records live in one dict of the class, read through these properties: a value
    # kept as a class attribute of its own would act as a descriptor if it were one.
    @property
    def unloaded_name(cls) -> str:
        """``module.qualname`` the pickle named."""
        return cls._unloaded["name"]

    @property
    def unloaded_global(cls) -> tuple[str, str] | None:
        """(module, qualified name) of the global the pickle named, or None (a call's
        result, a persistent reference)."""
        return cls._unloaded.get("global")

    @property
    def unloaded_call(cls) -> bool:
        """Whether this stands for an object made by calling the name (else the name)."""
        return cls._unloaded["call"]

    @property
    def unloaded_args(cls) -> tuple[Any, ...]:
        return cls._unloaded["args"]

    @property
    def unloaded_kwargs(cls) -> dict[Any, Any]:
        return cls._unloaded["kwargs"]

    @property
    def unloaded_state(cls) -> Any:
        """What BUILD gave it (``__setstate__``)."""
        return cls._unloaded["state"]

    @property
    def unloaded_items(cls) -> list[Any]:
        """What was appended or added to it."""
        return cls._unloaded["items"]

    @property
    def unloaded_entries(cls) -> list[Any]:
        """(key, value) of each item set on it."""
        return cls._unloaded["entries"]

    def __call__(cls, *args: Any, **kwargs: Any) -> UnloadedClass:
        return _placeholder(cls.unloaded_name, True, args, kwargs)

    def __setattr__(cls, name: str, value: Any) -> None:
        # BUILD with slot state would set attributes of the placeholder itself.
        raise TypeError(f"cannot set {name!r} on the unloaded {cls.unloaded_name}")

    def __setstate__(cls, state: Any) -> None:
        cls._unloaded["state"] = state

    def append(cls, item: Any) -> None:
        cls.unloaded_items.append(item)

    def extend(cls, items: Any) -> None:
        cls.unloaded_items.extend(items)

    def add(cls, item: Any) -> None:
        cls.unloaded_items.append(item)

    def __setitem__(cls, key: Any, value: Any) -> None:
        cls.unloaded_entries.append((key, value))

    def __repr__(cls) -> str:
        if cls.unloaded_call:
            return f"<{cls.unloaded_name} object, not loaded>"
        return f"<{cls.unloaded_name}, not loaded>"


def _records(
    name: str, call: bool, args: tuple[Any, ...], kwargs: dict[Any, Any]
) -> dict[str, Any]:
    return {
        "name": name, "call": call, "args": args, "kwargs": kwargs, "state": None,
        "items": [], "entries": [],
    }  # fmt: skip


class Unloaded(metaclass=UnloadedClass):
    """The base of every placeholder (see `UnloadedClass`)."""

    _unloaded = _records("an object", False, (), {})

    def __new__(cls, *args: Any, **kwargs: Any) -> UnloadedClass:
        # NEWOBJ and INST call this instead of the placeholder itself.
        if not isinstance(cls, UnloadedClass):
            raise TypeError(f"{cls!r} is not a placeholder")
        return _placeholder(cls.unloaded_name, True, args, kwargs)


def _placeholder(
    name: str, call: bool = False, args: tuple[Any, ...] = (), kwargs: dict[Any, Any] | None = None
) -> UnloadedClass:
    namespace = {"_unloaded": _records(name, call, args, kwargs or {})}
    return UnloadedClass.__new__(UnloadedClass, "Unloaded", (Unloaded,), namespace)


def is_unloaded(value: Any) -> bool:
    """Whether `value` is a placeholder, not a real value."""
    return isinstance(value, UnloadedClass)


def unloaded_names(value: Any) -> list[str]:
    """The names of the placeholders in `value` and in the plain containers it holds, in
    the order found, each once."""
    names: dict[str, None] = {}
    seen: set[int] = set()
    pending = [value]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, UnloadedClass):
            names.setdefault(item.unloaded_name)
        elif isinstance(item, dict):
            pending.extend(reversed([*item.keys(), *item.values()]))
        elif isinstance(item, list | tuple | set | frozenset):
            pending.extend(reversed(list(item)))
    return list(names)


class _Guarded:
    """An allowlisted constructor that takes only real values: given a placeholder (a date
    whose time zone is a class of its own), it records the call instead of failing."""

    def __init__(self, name: str, construct: Any) -> None:
        self.name, self.construct = name, construct

    def __call__(self, *args: Any) -> Any:
        if any(is_unloaded(argument) for argument in args):
            return _placeholder(self.name, True, args)
        return self.construct(*args)

    def __repr__(self) -> str:
        return f"<{self.name}>"


def _singleton_type(*args: Any) -> Any:
    """``type(None)`` and its kin, as protocol 4 and later write them; any other use of
    ``type`` (making a class) is recorded, not made."""
    if len(args) == 1 and (args[0] is None or args[0] is NotImplemented or args[0] is Ellipsis):
        return type(args[0])
    return _placeholder("builtins.type", True, args)


def _latin1(text: Any, encoding: Any = "latin1") -> Any:
    """``_codecs.encode(text, "latin1")``: how protocols 0 to 2 write bytes. Other
    encodings would look up codecs by name, so they are recorded instead."""
    if isinstance(text, str) and encoding in ("latin1", "latin-1"):
        return text.encode("latin-1")
    return _placeholder("_codecs.encode", True, (text, encoding))


_BUILTIN_TYPES = (
    dict, list, tuple, set, frozenset, bytes, bytearray, str, int, float, complex, bool,
    range, slice,
)  # fmt: skip
_GUARDED = (
    datetime.date, datetime.time, datetime.datetime, datetime.timedelta, datetime.timezone,
    decimal.Decimal, collections.OrderedDict,
)  # fmt: skip

#: (module, name) -> the object a pickle may have for it. Every other name is a placeholder.
ALLOWED: dict[tuple[str, str], Any] = {
    **{("builtins", kind.__name__): kind for kind in _BUILTIN_TYPES},
    **{
        (kind.__module__, kind.__qualname__): _Guarded(
            f"{kind.__module__}.{kind.__qualname__}", kind
        )
        for kind in _GUARDED
    },
    ("builtins", "Ellipsis"): Ellipsis,
    ("builtins", "NotImplemented"): NotImplemented,
    ("builtins", "type"): _singleton_type,
    ("_codecs", "encode"): _latin1,
}
_EXTENSION_OPCODES = frozenset({"EXT1", "EXT2", "EXT4"})


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, blobs: dict[Any, Any] | None = None) -> None:
        super().__init__(io.BytesIO(data))
        self._blobs = blobs
        #: One placeholder class per name, so two objects of a class share their class.
        self._placeholders: dict[str, UnloadedClass] = {}

    def find_class(self, module: str, name: str) -> Any:
        # Protocols 0 to 2 write Python 2's names (``__builtin__.xrange``): as `pickle` does.
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        allowed = ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        qualified = f"{module}.{name}"
        placeholder = self._placeholders.get(qualified)
        if placeholder is None:
            placeholder = self._placeholders[qualified] = _placeholder(qualified)
            placeholder._unloaded["global"] = (module, name)
        return placeholder

    def persistent_load(self, reference: Any) -> Any:
        if type(reference) is tuple and len(reference) == 2 and reference[0] == "blob":
            blob = (self._blobs or {}).get(reference[1])
            if type(blob) is tuple and len(blob) == 2 and type(blob[1]) in (str, bytes):
                return object_of(blob)  # a string or bytes: plain data
        return _placeholder("a persistent reference", True, (reference,))


def safe_loads(data: bytes, blobs: dict[Any, Any] | None = None) -> Any:
    """The value `data` pickles, with plain data rebuilt and every other object a
    placeholder (`UnloadedClass`): nothing is imported and no stored callable runs.

    Pickled state is code: a pickle names callables (``os.system``) and unpickling calls
    them. Here a name resolves to a real object only when it is in `ALLOWED`, types whose
    construction runs nothing but the interpreter's own code (containers, numbers, text,
    dates, decimals). Any other name is a placeholder *class*: calling it (REDUCE, INST,
    OBJ), its ``__new__`` (NEWOBJ), ``__setstate__`` (BUILD), appends and item sets only
    record what they are given, so the shape of the value can still be shown. A persistent
    reference is a placeholder too. Extension codes (``copyreg.add_extension``) are refused
    before anything is loaded: the interpreter serves them from a process-wide cache, past
    `find_class`. Malformed bytes raise `pickle.UnpicklingError` (or what the damaged
    opcodes make the unpickler raise).
    """
    data = bytes(data)
    try:
        for opcode, _, _ in pickletools.genops(data):
            if opcode.name in _EXTENSION_OPCODES:
                raise pickle.UnpicklingError(
                    "the pickle uses an extension code (copyreg.add_extension); such codes "
                    "are resolved outside the unpickler's control, so it is not loaded"
                )
    except ValueError as error:  # what pickletools raises for bytes that are not a pickle
        raise pickle.UnpicklingError(f"not a pickle: {error}") from None
    return _SafeUnpickler(data, blobs).load()
