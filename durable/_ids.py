"""Instance ids: the one rule that keeps an id from naming a path outside a store."""

from __future__ import annotations

import re
from typing import Any

_MAX_INSTANCE_ID = 200
_BAD_ID_CHARACTERS = re.compile(r"[\x00-\x1f\x7f/\\]")


def validate_instance_id(instance_id: Any) -> str:
    """Refuse ids that could name a path outside a store (or are not text at all)."""
    problem = None
    if not isinstance(instance_id, str):
        problem = f"it must be a string, not {type(instance_id).__name__}"
    elif not instance_id:
        problem = "it is empty"
    elif len(instance_id) > _MAX_INSTANCE_ID:
        problem = f"it is {len(instance_id)} characters long (at most {_MAX_INSTANCE_ID})"
    elif _BAD_ID_CHARACTERS.search(instance_id):
        problem = "it contains a path separator, NUL or another control character"
    elif ".." in instance_id or instance_id.startswith("."):
        problem = "it contains '..' or starts with '.'"
    if problem is not None:
        raise ValueError(
            f"invalid instance_id {instance_id!r}: {problem}; use up to {_MAX_INSTANCE_ID} "
            "letters, digits and punctuation such as '-', '_', ':' (no '/', '\\' or '..')"
        )
    return instance_id
