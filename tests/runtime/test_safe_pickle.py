"""`safe_loads` rebuilds plain data and runs nothing a pickle names: every way a pickle can
call something (REDUCE, NEWOBJ, INST, OBJ, BUILD, STACK_GLOBAL, EXT, persistent ids) is
tried against a marker file that must never appear."""

from __future__ import annotations

import collections
import contextlib
import copyreg
import datetime
import decimal
import pickle
import shlex
import struct
import sys
import time

import pytest

from durable.runtime import references
from durable.runtime.safe_pickle import is_unloaded, safe_loads, unloaded_names


class Receipt:
    def __init__(self, number: int) -> None:
        self.number = number


class Points(list):
    pass


PLAIN_VALUES = [
    None, True, False, 0, -7, 2**100, 1.5, float("inf"), 3 + 4j, "text", "ünïcode", b"\x00bytes",
    bytearray(b"mutable"), (1, "two"), [1, [2, [3]]], {"a": 1, 2: [3]}, {1, 2}, frozenset({3}),
    range(1, 10, 2), slice(1, 5, None), Ellipsis, NotImplemented, type(None),
    datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC),
    datetime.timezone(datetime.timedelta(hours=2), "CEST"),
    datetime.date(2026, 1, 2), datetime.time(3, 4), datetime.timedelta(days=1, seconds=2),
    decimal.Decimal("1.10"), collections.OrderedDict(b=1, a=2),
]  # fmt: skip


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_plain_data_loads_as_itself(value, protocol):
    loaded = safe_loads(pickle.dumps(value, protocol))
    assert loaded == value and type(loaded) is type(value)


def test_shared_and_nested_containers_stay_shared():
    inner = [1, 2]
    loaded = safe_loads(pickle.dumps({"x": inner, "y": inner}))
    assert loaded["x"] is loaded["y"]


def test_an_object_of_another_class_is_a_placeholder_naming_it():
    loaded = safe_loads(pickle.dumps({"receipt": Receipt(7)}))
    placeholder = loaded["receipt"]
    assert is_unloaded(placeholder)
    assert repr(placeholder) == f"<{__name__}.Receipt object, not loaded>"
    assert placeholder.unloaded_state == {"number": 7}
    assert unloaded_names(loaded) == [f"{__name__}.Receipt"]


def test_a_list_subclass_keeps_its_items_in_the_placeholder():
    loaded = safe_loads(pickle.dumps(Points([1, 2])))
    assert is_unloaded(loaded) and loaded.unloaded_items == [1, 2]


def test_a_datetime_with_a_time_zone_of_another_class_is_a_placeholder():
    loaded = safe_loads(_datetime_with_foreign_zone())
    assert repr(loaded) == "<datetime.datetime object, not loaded>"


def _datetime_with_foreign_zone() -> bytes:
    # datetime.datetime(<state bytes>, myzones.Zone())
    state = datetime.datetime(2026, 1, 2).__reduce__()[1][0]
    return (
        b"\x80\x04cdatetime\ndatetime\n"
        + b"C" + bytes([len(state)]) + state
        + b"cmyzones\nZone\n)R\x86R."
    )  # fmt: skip


def test_a_module_named_by_a_pickle_is_not_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "booby_trapped.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Thing: pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    loaded = safe_loads(b"\x80\x04cbooby_trapped\nThing\n)\x81.")
    assert repr(loaded) == "<booby_trapped.Thing object, not loaded>"
    assert not marker.exists() and "booby_trapped" not in sys.modules


# -- adversarial pickles: each runs `touch MARKER` (or writes it) when unpickled plainly ----
def _text(value: str) -> bytes:
    """A protocol-0 string opcode."""
    return b"S" + repr(value).encode() + b"\n"


def _short_unicode(value: str) -> bytes:
    encoded = value.encode()
    return b"\x8c" + bytes([len(encoded)]) + encoded


def _shell(marker) -> str:
    return f"touch {shlex.quote(str(marker))}"


#: name -> (the pickle, given the marker's path; whether what it runs is a child process
#: that may touch the marker a little later).
ATTACKS = {
    "REDUCE os.system": (lambda m: b"cos\nsystem\n(" + _text(_shell(m)) + b"tR.", False),
    "REDUCE builtins.eval": (
        lambda m: b"cbuiltins\neval\n(" + _text(f"open({str(m)!r}, 'w')") + b"tR.",
        False,
    ),
    "REDUCE builtins.exec": (
        lambda m: b"cbuiltins\nexec\n(" + _text(f"open({str(m)!r}, 'w')") + b"tR.",
        False,
    ),
    "REDUCE getattr(__import__('os'), 'system')": (
        lambda m: b"cbuiltins\ngetattr\n(cbuiltins\n__import__\n(" + _text("os") + b"tR"
        + _text("system") + b"tR(" + _text(_shell(m)) + b"tR.",
        False,
    ),
    "REDUCE subprocess.Popen": (
        lambda m: b"csubprocess\nPopen\n((" + _text("touch") + _text(str(m)) + b"ltR.",
        True,
    ),
    "STACK_GLOBAL posix.system": (
        lambda m: b"\x80\x04" + _short_unicode("posix") + _short_unicode("system") + b"\x93"
        + _short_unicode(_shell(m)) + b"\x85R.",
        False,
    ),
    "INST os.system": (lambda m: b"(" + _text(_shell(m)) + b"ios\nsystem\n.", False),
    "OBJ os.system": (lambda m: b"(cos\nsystem\n" + _text(_shell(m)) + b"o.", False),
    "NEWOBJ functools.partial(os.system, cmd), called": (
        lambda m: b"\x80\x02cfunctools\npartial\n(cos\nsystem\n" + _text(_shell(m))
        + b"t\x81)R.",
        False,
    ),
    "NEWOBJ_EX functools.partial(os.system, command=cmd), called": (
        lambda m: b"\x80\x04cfunctools\npartial\n(cos\nsystem\nt}"
        + _short_unicode("command") + _short_unicode(_shell(m)) + b"s\x92)R.",
        False,
    ),
    "BUILD setting __setstate__ on an allowlisted object, then BUILD again": (
        lambda m: b"\x80\x02ccollections\nOrderedDict\n)R"
        + b"N}" + _text("__setstate__") + b"cos\nsystem\ns\x86b"  # (None, slots): setattr
        + _text(_shell(m)) + b"b.",
        False,
    ),
    "copyreg._reconstructor calling Popen.__init__": (
        lambda m: b"ccopyreg\n_reconstructor\n(csubprocess\nPopen\ncsubprocess\nPopen\n("
        + _text("touch") + _text(str(m)) + b"ltR.",
        True,
    ),
    "BINPERSID of a module global, then REDUCE": (
        lambda m: b"\x80\x02(" + _text("global") + _text("os") + _text("system") + b"tQ("
        + _text(_shell(m)) + b"tR.",
        False,
    ),
}  # fmt: skip


def _marker_appeared(marker, spawns: bool) -> bool:
    """Whether `marker` exists, waiting a little for a child process to make it."""
    deadline = time.monotonic() + (2.0 if spawns else 0.0)
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return marker.exists()


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_runs_when_unpickled_as_trusted_state_is(attack, tmp_path):
    # What `durable status` did before: the runtime's unpickler (references.loads).
    make, spawns = ATTACKS[attack]
    marker = tmp_path / "marker"
    with contextlib.suppress(Exception):
        references.loads(make(marker))
    assert _marker_appeared(marker, spawns)


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_attack_runs_when_unpickled_safely(attack, tmp_path):
    make, spawns = ATTACKS[attack]
    marker = tmp_path / "marker"
    try:
        loaded = safe_loads(make(marker))
    except (pickle.UnpicklingError, TypeError, AttributeError):
        loaded = None  # refused as malformed: as good, if nothing ran
    repr(loaded), str(loaded), unloaded_names(loaded)  # looking at it runs nothing either
    if spawns:
        time.sleep(0.3)  # what a child process started by the pickle would need to touch it
    assert not marker.exists()


def test_an_attack_loads_as_a_placeholder_naming_what_it_would_call(tmp_path):
    loaded = safe_loads(ATTACKS["REDUCE os.system"][0](tmp_path / "marker"))
    assert repr(loaded) == "<os.system object, not loaded>"
    assert loaded.unloaded_args == (_shell(tmp_path / "marker"),)


@pytest.fixture
def extension_to_os_system():
    """Extension code 0xF0 registered for os.system, and the interpreter's cache of it warm
    (as any earlier plain unpickle of that code leaves it)."""
    code = 0xF0
    copyreg.add_extension("os", "system", code)
    try:
        pickle.loads(b"\x80\x02\x82" + bytes([code]) + b".")
        yield code
    finally:
        copyreg.remove_extension("os", "system", code)
        copyreg.clear_extension_cache()


def _extension_call(opcode: bytes, code: int, marker) -> bytes:
    width = {b"\x82": "<B", b"\x83": "<H", b"\x84": "<i"}[opcode]
    return b"\x80\x02" + opcode + struct.pack(width, code) + b"(" + _text(_shell(marker)) + b"tR."


EXTENSION_OPCODES = {"EXT1": b"\x82", "EXT2": b"\x83", "EXT4": b"\x84"}


@pytest.mark.parametrize("opcode", EXTENSION_OPCODES.values(), ids=EXTENSION_OPCODES)
def test_an_extension_code_runs_when_unpickled_plainly(extension_to_os_system, opcode, tmp_path):
    marker = tmp_path / "marker"
    pickle.loads(_extension_call(opcode, extension_to_os_system, marker))
    assert marker.exists()


@pytest.mark.parametrize("opcode", EXTENSION_OPCODES.values(), ids=EXTENSION_OPCODES)
def test_an_extension_code_is_refused_before_anything_loads(
    extension_to_os_system, opcode, tmp_path
):
    marker = tmp_path / "marker"
    with pytest.raises(pickle.UnpicklingError, match="extension code"):
        safe_loads(_extension_call(opcode, extension_to_os_system, marker))
    assert not marker.exists()


def test_codecs_encode_with_another_encoding_is_recorded_not_looked_up():
    loaded = safe_loads(b"c_codecs\nencode\n(" + _text("x") + _text("rot13") + b"tR.")
    assert is_unloaded(loaded) and loaded.unloaded_args == ("x", "rot13")


def test_type_making_a_class_is_recorded_not_made():
    loaded = safe_loads(b"cbuiltins\ntype\n(" + _text("Evil") + b"(cbuiltins\nobject\nt}tR.")
    assert is_unloaded(loaded) and loaded.unloaded_args[0] == "Evil"


def test_a_placeholder_cannot_be_written_back_as_the_value():
    placeholder = safe_loads(pickle.dumps(Receipt(1)))
    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        pickle.dumps(placeholder)


def test_a_placeholder_refuses_attributes_set_on_it():
    placeholder = safe_loads(pickle.dumps(Receipt(1)))
    with pytest.raises(TypeError, match="cannot set"):
        placeholder.number = 2


@pytest.mark.parametrize(
    "data", [b"", b"\x80\x05garbage", b"\x80\x04\x95\xff\xff", b"(lp0\nI1\n"], ids=repr
)
def test_bytes_that_are_not_a_pickle_raise_an_unpickling_error(data):
    with pytest.raises((pickle.UnpicklingError, EOFError, ValueError)):
        safe_loads(data)
