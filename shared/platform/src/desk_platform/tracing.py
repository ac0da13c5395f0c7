"""Traces (OpenTelemetry): one trace for a request, from the door it came in by to the mail
that answers it, across every process it crosses.

`configure_tracing` installs the SDK's tracer provider for the process (its `service.name`
the service's), the asyncpg and aiokafka instrumentations, and an OTLP/HTTP exporter when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (none otherwise: spans are made, so trace ids reach the
events and the logs, and dropped). `OTEL_SDK_DISABLED=true` turns it all off. The HTTP API of
every process is instrumented by `instrument_app` (its probes and scrapes left out), the
portal's calls to the services carry the trace (`carry_trace`), a consumed
record is handled in `handling`'s span, child of the span that appended its event (the
record's `ce_traceparent`, `desk_eventstore.tracecontext`), and a mail the gateway receives
starts a trace of its own.

Only the spans that start work may start a trace (`_WorkStarts`): a query or a send outside
any (a relay's poll, a lease renewed) is not recorded, so the traces are the requests'. Work
no recorded trace follows runs `quiet`: the background loops, and a request or a record whose
trace is not sampled (`OTEL_TRACES_SAMPLER_ARG`), make no span of their queries and sends at
all, which would each cost as much as the statement's own client side. The
aiokafka instrumentation's consumer side is left off: it decodes every header of a poll as
UTF-8 (one hostile header would fail every poll of its partition, for ever) and makes a
trace of each poll; `handling` continues the record's trace from the envelope, whose headers
are checked first.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import aiokafka
from opentelemetry import propagate, trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiokafka import AIOKafkaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation, unwrap
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from desk_eventstore import tracecontext
from desk_platform.settings import Settings

TRACER = trace.get_tracer("desk")
# what probes and scrapes ask, no trace of each: searched in the whole URL (Host included)
_NOT_TRACED = "/health$,/ready$,/metrics$"
_TRACE_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
FLUSH_SECONDS = 2.0  # spans of a stopping process sent within this, or dropped


class _WorkStarts(Sampler):
    """For spans without a parent: a request served, a mail received or a record handled may
    start a trace (`ratio` of them are recorded, by trace id); a query or a send may not (they
    belong to a trace or to none)."""

    def __init__(self, ratio: float = 1.0) -> None:
        self.ratio = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if kind in (SpanKind.CLIENT, SpanKind.PRODUCER):
            return SamplingResult(Decision.DROP)
        return self.ratio.should_sample(parent_context, trace_id, name, kind, attributes)

    def get_description(self) -> str:
        return "WorkStarts"


def configure_tracing(service: str, settings: Settings) -> bool:
    """Install tracing for this process (once: the first service of a process names it);
    False when `OTEL_SDK_DISABLED` turns it off."""
    if settings.otel_sdk_disabled:
        return False
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return True
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(root=_WorkStarts(settings.otel_traces_sampler_arg)),
        shutdown_on_exit=False,  # `flush_traces` at the stop, bounded
    )
    if settings.otel_exporter_otlp_endpoint:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(TraceContextTextMapPropagator())  # no baggage: nothing reads it
    AsyncPGInstrumentor().instrument()  # type: ignore[no-untyped-call]
    if not AIOKafkaInstrumentor().is_instrumented_by_opentelemetry:
        AIOKafkaInstrumentor().instrument()
        unwrap(aiokafka.AIOKafkaConsumer, "getone")  # see the module's docstring
        unwrap(aiokafka.AIOKafkaConsumer, "getmany")
    return True


def flush_traces() -> None:
    """Send the spans not exported yet, waiting `FLUSH_SECONDS` at most (a stopping process
    must not outlive its grace period for want of a collector)."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.force_flush(int(FLUSH_SECONDS * 1000))


def own_traces(app: Any) -> Any:
    """`app` (ASGI) for a door the public reaches: the trace headers a caller sends are
    dropped, so each request starts a trace of our own (a caller cannot have every request
    recorded whatever the sampling, nor join its requests to another's trace)."""

    async def untrusted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = [(n, v) for n, v in scope["headers"] if n.lower() not in _TRACE_HEADERS]
            scope = {**scope, "headers": headers}
        await app(scope, receive, send)

    return untrusted


def instrument_app(app: Any) -> None:
    """Trace each request the FastAPI `app` serves (not its probes and scrapes)."""
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=_NOT_TRACED, exclude_spans=["receive", "send"]
    )
    app.add_middleware(_QuietUnlessTraced)  # inside the instrumentation's own middleware


def quiet() -> contextlib.AbstractContextManager[None]:
    """Inside the block (and the tasks it starts), queries and sends make no spans."""
    return suppress_instrumentation()


class _QuietUnlessTraced:
    """ASGI middleware: a request whose span is not recorded (not sampled, or a probe) runs
    `quiet`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if trace.get_current_span().is_recording():
            await self.app(scope, receive, send)
            return
        with quiet():
            await self.app(scope, receive, send)


@contextmanager
def _in_span(span: trace.Span, parent: Context) -> Iterator[None]:
    """`span` current in the block, on top of `parent` (not of the current context: the block
    is not quiet for being started from quiet work), and the block quiet unless `span` is
    recorded; an exception is recorded on it."""
    token = attach(trace.set_span_in_context(span, parent))
    try:
        with trace.use_span(span, end_on_exit=True):
            if span.is_recording():
                yield
            else:
                with quiet():
                    yield
    finally:
        detach(token)


@contextmanager
def handling(topic: str, group: str, extensions: Sequence[Mapping[str, Any]]) -> Iterator[None]:
    """The span a consumer handles records of `topic` in: child of the record's trace (its
    CloudEvents extensions, where `ce_traceparent` lands). Records handled as one set: the
    set's work is in the first record's span; each other record gets a span of its own in its
    own trace, for the same time, linked to that one, so every request's trace shows it."""
    parent, *others = [tracecontext.context_of(e) for e in extensions] or [Context()]
    attributes: dict[str, str | int] = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.batch.message_count": len(extensions),
    }
    name = f"{topic} process"
    span = TRACER.start_span(name, context=parent, kind=SpanKind.CONSUMER, attributes=attributes)
    beside = [
        TRACER.start_span(
            name,
            context=other,
            kind=SpanKind.CONSUMER,
            links=[Link(span.get_span_context())],
            attributes=attributes,
        )
        for other in others
    ]
    try:
        with _in_span(span, parent):
            yield
    finally:
        for each in beside:
            each.end()


async def carry_trace(request: Any) -> None:
    """An httpx request hook: the request carries the current trace (`traceparent`), so the
    service it calls continues it."""
    propagate.inject(request.headers)


@contextmanager
def serving(name: str, attributes: Mapping[str, str | int]) -> Iterator[None]:
    """A span of work that comes in from outside by another door than HTTP (a mail received
    over SMTP): a trace of its own."""
    span = TRACER.start_span(name, context=Context(), kind=SpanKind.SERVER, attributes=attributes)
    with _in_span(span, Context()):
        yield


@contextmanager
def sending(
    name: str, traceparent: str | None, attributes: Mapping[str, str | int]
) -> Iterator[None]:
    """A span of a call out (a mail handed to the SMTP relay), in the trace `traceparent`
    names; not recorded when it names none."""
    parent = tracecontext.context_of({tracecontext.TRACEPARENT: traceparent})
    span = TRACER.start_span(name, context=parent, kind=SpanKind.CLIENT, attributes=attributes)
    with _in_span(span, parent):
        yield
