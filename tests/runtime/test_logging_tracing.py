"""The runtime's logs (``durable.runtime``, one INFO line per event, naming the instance) and
its optional OpenTelemetry spans (one per run, one per durable operation)."""

from __future__ import annotations

import logging

import pytest

from durable import (
    DurableBackend,
    InMemoryStateStore,
    PauseForEventException,
    RetryPolicy,
    durable_execute,
    make_durable,
    wait_for_event,
)


def double(value: int) -> int:
    return value * 2


FLAKY = {"left": 0}


def flaky() -> str:
    if FLAKY["left"]:
        FLAKY["left"] -= 1
        raise ConnectionError("try again")
    return "ok"


@make_durable
async def approve(value: int) -> int:
    doubled = await durable_execute(double, value)
    await wait_for_event("approved")
    return doubled


@make_durable
async def breaks() -> None:
    raise LookupError("no such order")


@make_durable
async def retried() -> str:
    return await durable_execute(flaky, retry=RetryPolicy(max_attempts=3, initial_backoff=0))


def runtime_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "durable.runtime"]


async def test_each_event_of_an_instance_is_one_info_line_naming_it(caplog):
    caplog.set_level(logging.INFO, logger="durable")
    backend = DurableBackend(InMemoryStateStore())
    with pytest.raises(PauseForEventException):
        await approve(2, orchestration_backend=backend, instance_id="a-1")
    backend.publish_event("a-1", "approved")
    assert await approve(2, orchestration_backend=backend, instance_id="a-1") == 4
    assert runtime_lines(caplog) == [
        f"instance 'a-1' started ({approve.key})",
        "instance 'a-1' paused, waiting for event 'approved'",
        "instance 'a-1' resumed (its event arrived, its deadline passed, or it was cancelled)",
        "instance 'a-1' completed",
    ]


async def test_a_failure_is_logged_with_its_error(caplog):
    caplog.set_level(logging.INFO, logger="durable")
    with pytest.raises(LookupError):
        await breaks(orchestration_backend=DurableBackend(), instance_id="b-1")
    assert "instance 'b-1' failed: LookupError: no such order" in runtime_lines(caplog)


async def test_a_retry_is_logged_with_its_attempt_and_delay(caplog):
    caplog.set_level(logging.INFO, logger="durable")
    FLAKY["left"] = 1
    assert await retried(orchestration_backend=DurableBackend(), instance_id="r-1") == "ok"
    (line,) = [line for line in runtime_lines(caplog) if "attempt" in line]
    assert line.startswith("instance 'r-1': durable_execute(")
    assert "failed on attempt 1 (ConnectionError: try again); attempt 2 in" in line


async def test_the_runtime_is_quiet_at_warning(caplog):
    caplog.set_level(logging.WARNING, logger="durable")
    backend = DurableBackend(InMemoryStateStore())
    with pytest.raises(PauseForEventException):
        await approve(2, orchestration_backend=backend, instance_id="q-1")
    assert caplog.records == []


@pytest.fixture
def spans():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace._TRACER_PROVIDER_SET_ONCE._done = False  # the API sets a provider once per process
    trace.set_tracer_provider(provider)
    yield exporter
    trace._TRACER_PROVIDER_SET_ONCE._done = False
    trace._TRACER_PROVIDER = None


async def test_a_run_is_one_span_with_a_child_span_per_durable_operation(spans):
    backend = DurableBackend(InMemoryStateStore())
    with pytest.raises(PauseForEventException):
        await approve(2, orchestration_backend=backend, instance_id="t-1")
    finished = spans.get_finished_spans()
    run = next(span for span in finished if span.name.startswith("durable run "))
    (step,) = [span for span in finished if span.name.startswith("durable call ")]
    assert run.attributes["durable.instance_id"] == "t-1"
    assert step.parent.span_id == run.context.span_id
    assert step.attributes["durable.seq"] == 1
    assert step.attributes["durable.status"] == "SUCCEEDED"
    assert step.start_time <= step.end_time


async def test_without_a_tracer_provider_nothing_is_traced():
    from durable.runtime.tracing import tracer

    assert tracer() is None
