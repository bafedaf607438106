"""OpenTelemetry spans, when the optional ``opentelemetry-api`` is installed: one span per
instance run and one per durable operation inside it (``pip install 'durable-frames[otel]'``).

Without the package nothing is traced and nothing costs: the runtime asks `tracer()` once
per run. Operation spans are made when the operation's journal entry is written, from the
time it started, so the step's own path gains one branch.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

try:
    from opentelemetry import trace as _trace
except ImportError:  # the optional extra is not installed
    _trace = None

#: The instrumentation scope of the spans.
TRACER_NAME = "durable"


def tracer() -> Any:
    """The OpenTelemetry tracer of this package, or None: without ``opentelemetry-api``, or
    while no tracer provider is set (the API's default records nothing, so nothing is made
    for it)."""
    if _trace is None:
        return None
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _trace.ProxyTracerProvider | _trace.NoOpTracerProvider):
        return None
    return provider.get_tracer(TRACER_NAME)


@contextlib.contextmanager
def run_span(tracer: Any, instance_id: str, program: str, status: str | None):
    """The span of one run of an instance (`status`: what the store held, None for new)."""
    attributes = {"durable.instance_id": instance_id, "durable.program": program}
    if status is not None:
        attributes["durable.resumed_from"] = status
    with tracer.start_as_current_span(f"durable run {program}", attributes=attributes) as span:
        yield span


def operation_span(
    tracer: Any, instance_id: str, seq: int, entry: dict[str, Any], ended_at: float
) -> None:
    """A finished span for the durable operation `seq` whose `entry` was just written."""
    from .history import ROW_FIELDS, _summary

    row = dict(zip(ROW_FIELDS, _summary(seq, entry, ended_at, None), strict=True))
    started = row["started_at"] or ended_at
    span = tracer.start_span(
        f"durable {row['kind']} {row['function']}",
        start_time=int(started * 1e9),
        attributes={
            "durable.instance_id": instance_id,
            "durable.seq": seq,
            "durable.kind": row["kind"],
            "durable.function": str(row["function"]),
            "durable.status": row["status"],
            "durable.attempts": row["attempts"],
        },
    )
    if row["error"]:
        span.set_status(_trace.Status(_trace.StatusCode.ERROR, row["error"]))
    span.end(end_time=int((row["ended_at"] or time.time()) * 1e9))
