"""Which compiled code a saved frame resumes on: its own, a migration onto the current code,
the code version saved with the instance, or a clear refusal (never different code silently).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from .._errors import IncompatibleStateError

if TYPE_CHECKING:
    from ..transform.pipeline import CodeBlock, CodeVersion
    from .frames import FrameRecord
    from .program import DurableProgram
    from .runtime import InstanceRun

#: ``migrate(saved_line, live_locals) -> (new_line, new_live_locals)``.
Migration = Callable[[int, dict[str, Any]], tuple[int, dict[str, Any]]]
CodeChangePolicy = Literal["resume_saved_version", "fail"]

logger: logging.Logger = logging.getLogger("durable.runtime")


def code_for_saved_frame(
    current: CodeBlock | None,
    fn: Callable[..., Any],
    saved_versions: dict[str, CodeBlock],
    policy: DurableProgram[..., Any],
    record: FrameRecord,
    run: InstanceRun,
    code_versions: Mapping[str, CodeVersion],
) -> tuple[CodeBlock, int, dict[str, Any]]:
    """(code, resume point, live locals) to resume a frame saved by `fn`, whose code now
    compiles to `current` (None: it no longer compiles). `policy` is the program whose
    ``migrations`` and ``on_code_change`` apply: the function's own, or for a helper the
    instance's entry program."""
    if current is not None and record.fingerprint == current.fingerprint:
        return current, record.resume_point, record.live_locals
    migration = next(
        (m for fp, m in policy.migrations.items() if record.fingerprint.startswith(fp)), None
    )
    if migration is not None and current is not None:
        line, live_locals = migration(record.line, dict(record.live_locals))
        logger.info(
            "instance %r: %s migrated from code version %s (line %d) to the current code "
            "(line %d)",
            run.instance_id, fn.__qualname__, record.fingerprint[:16], record.line, line,
        )  # fmt: skip
        return current, current.resume_point_at(line), live_locals
    version = code_versions.get(record.fingerprint)
    if version is not None and policy.on_code_change == "resume_saved_version":
        saved = saved_versions.get(record.fingerprint)
        if saved is None:
            from ..transform.pipeline import compile_version

            saved = saved_versions[record.fingerprint] = compile_version(version, fn)
        logger.info(
            "instance %r: %s resumes on its saved code version %s (the function has changed "
            "since it was suspended at line %d)",
            run.instance_id, fn.__qualname__, record.fingerprint[:16], record.line,
        )  # fmt: skip
        return saved, record.resume_point, record.live_locals
    reason = (
        "on_code_change='fail' refuses to resume on the saved version"
        if version is not None
        else "the instance carries no copy of that code"
    )
    now = (
        f"now compiles to version {current.fingerprint[:16]}"
        if current is not None
        else "no longer compiles"
    )
    raise IncompatibleStateError(
        f"instance {run.instance_id!r}: {fn.__qualname__} was suspended at line "
        f"{record.line} by code version {record.fingerprint[:16]}, but the function {now} "
        f"and {reason}; restore the old code, or pass make_durable(..., migrations="
        f"{{'{record.fingerprint[:16]}': migrate}}) to the entry function with "
        "migrate(line, live_locals) -> (new_line, live_locals)"
    )
