"""Trace context through events: what an appended event keeps, what a consumer continues, and
which spans may start a trace (the SDK's own in-memory exporter, no collector)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from desk_contracts.envelope import Envelope
from desk_contracts.tickets import TicketClosed
from desk_eventstore import tracecontext
from desk_eventstore.records import NewEvent, RecordedEvent
from desk_platform import tracing
from desk_platform.tracing import _WorkStarts

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """The spans made through `desk_platform.tracing`'s tracer, with the sampler it installs."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ParentBased(root=_WorkStarts()))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "TRACER", provider.get_tracer("test"))
    yield exporter
    provider.shutdown()


def closed() -> TicketClosed:
    return TicketClosed(
        ticket_id="t-1", occurred_at=datetime.now(UTC), from_status="resolved", to_status="closed"
    )


def test_outside_any_span_an_event_carries_no_trace() -> None:
    assert tracecontext.current() == {}
    assert NewEvent.from_event(closed(), metadata={"correlationid": "c"}).metadata == {
        "correlationid": "c"
    }


def test_an_event_appended_in_a_span_keeps_it_and_publishes_it_as_ce_traceparent(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.serving("smtp DATA", {"client.address": "192.0.2.1"}):
        new = NewEvent.from_event(closed())
    (span,) = spans.get_finished_spans()
    assert span.context is not None
    ids = span.context
    expected = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"
    assert new.metadata["traceparent"] == expected
    recorded = RecordedEvent(
        1, "t-1", 1, new.event_id, new.event_type, 1, new.payload, new.metadata,
        datetime.now(UTC),
    )  # fmt: skip
    _, _, headers = recorded.to_kafka("/desk/test")
    assert ("ce_traceparent", expected.encode()) in headers
    assert Envelope.from_kafka(*recorded.to_kafka("/desk/test")).extensions["traceparent"] == (
        expected
    )


def test_a_consumer_continues_each_records_trace_even_when_it_handles_them_as_one_set(
    spans: InMemorySpanExporter,
) -> None:
    other = "00-11111111111111111111111111111111-2222222222222222-01"
    records = [{"traceparent": TRACEPARENT}, {"traceparent": other}]
    with tracing.handling("ticket-events", "sla.ticket-events", records):
        pass
    first, second = sorted(spans.get_finished_spans(), key=lambda s: len(s.links))
    assert first.kind == second.kind == SpanKind.CONSUMER
    assert first.parent is not None and first.parent.span_id == 0xB7AD6B7169203331
    assert (
        first.context is not None and first.context.trace_id == 0x0AF7651916CD43DD8448EB211C80319C
    )
    assert second.parent is not None and second.parent.span_id == 0x2222222222222222
    assert [link.context.span_id for link in second.links] == [first.context.span_id]


@pytest.mark.parametrize(
    "value",
    ["", "garbage", "00-" + "0" * 32 + "-" + "0" * 16 + "-01", "00-zz-yy-01", "x" * 5000, 42],
)
def test_a_record_naming_no_valid_trace_starts_its_own(
    spans: InMemorySpanExporter, value: object
) -> None:
    assert not tracecontext.context_of({"traceparent": value})  # an empty context
    with tracing.handling("ticket-events", "sla.ticket-events", [{"traceparent": value}]):
        pass
    (span,) = spans.get_finished_spans()
    assert span.parent is None


def test_only_the_start_of_some_work_starts_a_trace(spans: InMemorySpanExporter) -> None:
    with tracing.sending("smtp send", None, {}):  # a send outside any trace: not recorded
        pass
    with tracing.sending("smtp send", TRACEPARENT, {}):  # in one: recorded, in it
        pass
    finished: tuple[ReadableSpan, ...] = spans.get_finished_spans()
    assert [(s.name, s.context.trace_id if s.context else 0) for s in finished] == [
        ("smtp send", 0x0AF7651916CD43DD8448EB211C80319C)
    ]


def test_what_a_recorded_trace_follows_is_traced_even_from_quiet_work(
    spans: InMemorySpanExporter,
) -> None:
    unsampled = TRACEPARENT[:-2] + "00"
    with tracing.quiet():  # a background loop: its queries make no spans
        assert not is_instrumentation_enabled()
        with tracing.handling("ticket-events", "sla.ticket-events", [{"traceparent": TRACEPARENT}]):
            assert is_instrumentation_enabled()  # a record of a sampled trace: its queries too
        with tracing.handling("ticket-events", "sla.ticket-events", [{"traceparent": unsampled}]):
            assert not is_instrumentation_enabled()  # of a trace not sampled: none
        assert not is_instrumentation_enabled()
    with tracing.serving("smtp DATA", {}):
        assert is_instrumentation_enabled()
    assert is_instrumentation_enabled()
    assert len(spans.get_finished_spans()) == 2


async def test_a_public_door_drops_the_trace_headers_its_callers_send() -> None:
    seen: list[list[tuple[bytes, bytes]]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["headers"])

    headers = [(b"traceparent", TRACEPARENT.encode()), (b"TraceState", b"a=b"),
               (b"baggage", b"k=v"), (b"x-correlation-id", b"c-1")]  # fmt: skip
    await tracing.own_traces(app)({"type": "http", "headers": headers}, None, None)
    assert seen == [[(b"x-correlation-id", b"c-1")]]


def test_a_copied_record_keeps_no_sender_trace_header_but_its_events_own() -> None:
    headers = [("ce_traceparent", b"00-a-b-01"), ("traceparent", b"00-c-d-01"), ("dlt_x", b"1")]
    assert tracecontext.without_trace(headers) == [
        ("ce_traceparent", b"00-a-b-01"),
        ("dlt_x", b"1"),
    ]


def test_consumers_are_not_instrumented_where_one_hostile_header_would_stop_a_partition() -> None:
    """In a process of its own (tracing is installed once per process, for good): sends are
    traced, polls are not (their instrumentation decodes every header as UTF-8)."""
    script = """
import aiokafka
from desk_platform.settings import Settings
from desk_platform.tracing import configure_tracing
settings = Settings(database_url="postgresql://x", kafka_bootstrap_servers="x")
assert configure_tracing("probe", settings)
assert hasattr(aiokafka.AIOKafkaProducer.send, "__wrapped__")
assert not hasattr(aiokafka.AIOKafkaConsumer.getmany, "__wrapped__")
assert not hasattr(aiokafka.AIOKafkaConsumer.getone, "__wrapped__")
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
