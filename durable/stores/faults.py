"""Fault points for crash tests: a store can kill its own process at its k-th write.

Set ``DURABLE_FAULT`` to ``before:K``, ``after:K`` or ``torn:K`` and the K-th instance write of
the process is preceded by, followed by, or cut short by SIGKILL. `durable.testing` uses it to
crash a workflow at every write boundary; stores that honour it call `FaultPlan.next_write`.
"""

from __future__ import annotations

import os
import signal

ENVIRONMENT_VARIABLE = "DURABLE_FAULT"
KINDS = ("before", "after", "torn")


class FaultPlan:
    """Counts the instance writes of this process and says which one to break, and how."""

    def __init__(self, spec: str | None) -> None:
        self.kind: str | None = None
        self.at: int = 0
        self.writes: int = 0
        if not spec:
            return
        kind, _, number = spec.partition(":")
        if kind not in KINDS or not number.isdigit() or int(number) < 1:
            raise ValueError(
                f"{ENVIRONMENT_VARIABLE}={spec!r} is not a fault point; write one of "
                "before:K, after:K or torn:K with K >= 1 (the K-th store write of the process)"
            )
        self.kind, self.at = kind, int(number)

    @classmethod
    def from_environment(cls) -> FaultPlan:
        return cls(os.environ.get(ENVIRONMENT_VARIABLE))

    def next_write(self) -> str | None:
        """Count one write; the fault kind when this is the write to break, else None."""
        if self.kind is None:
            return None
        self.writes += 1
        return self.kind if self.writes == self.at else None


def die() -> None:
    """End this process as a power cut would: no cleanup, no flush of Python buffers."""
    os.kill(os.getpid(), signal.SIGKILL)
