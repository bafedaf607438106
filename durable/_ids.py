"""Instance ids: the one rule that keeps an id from naming a path outside a store."""

from __future__ import annotations

import re
from typing import Any

_MAX_INSTANCE_ID = 200
# C0 and C1 control characters, DEL, path separators; surrogates cannot name a file at all.
_BAD_ID_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f/\\\ud800-\udfff]")


def validate_instance_id(instance_id: Any) -> str:
    """Refuse ids that could name a path outside a store (or are not text at all)."""
    if type(instance_id) is str and instance_id in _recently_valid:
        return instance_id
    _check(instance_id)
    if len(_recently_valid) >= 4096:
        _recently_valid.clear()
    _recently_valid.add(instance_id)
    return instance_id


#: Ids that passed `_check` lately: the check runs on every store call.
_recently_valid: set[str] = set()


def _check(instance_id: Any) -> None:
    problem = None
    if not isinstance(instance_id, str):
        problem = f"it must be a string, not {type(instance_id).__name__}"
    elif not instance_id:
        problem = "it is empty"
    elif _BAD_ID_CHARACTERS.search(instance_id):
        problem = "it contains a path separator, NUL, another control character or a surrogate"
    elif len(instance_id.encode("utf-8")) > _MAX_INSTANCE_ID:
        # Measured in UTF-8 bytes, so "<id>.state" fits a file name (255 bytes) on disk.
        size = len(instance_id.encode("utf-8"))
        unit = "characters" if size == len(instance_id) else "bytes in UTF-8"
        problem = f"it is {size} {unit} long (at most {_MAX_INSTANCE_ID})"
    elif ".." in instance_id or instance_id.startswith("."):
        problem = "it contains '..' or starts with '.'"
    if problem is not None:
        raise ValueError(
            f"invalid instance_id {instance_id!r}: {problem}; use up to {_MAX_INSTANCE_ID} "
            "letters, digits and punctuation such as '-', '_', ':' (no '/', '\\' or '..')"
        )
