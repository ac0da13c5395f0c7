"""Benchmark (not a test): what the parts of tracing cost, one at a time, in one process.

    uv run python bench/tracing_parts.py [--requests 20000]

The OpenTelemetry SDK as `desk_platform.tracing` installs it (its sampler, a batch span
processor; an exporter that drops what it is given, so no network is timed), at a sampling
ratio of 1 (every trace recorded) and 0 (none): the FastAPI/ASGI instrumentation's middleware
around a bare ASGI app answering 201 (the same-run baseline: that app alone), a query's span
as the asyncpg instrumentation opens one (kind CLIENT, its attributes) inside a request's span,
the same inside `desk_platform.tracing.quiet` (what a request not sampled does), and the trace
context an appended event takes (`desk_eventstore.tracecontext.current`). Microseconds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from desk_eventstore import tracecontext
from desk_platform.tracing import _WorkStarts, quiet

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
    "scheme": "http", "path": "/requests", "raw_path": b"/requests", "query_string": b"",
    "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8001),
    "headers": [(b"host", b"127.0.0.1:8001"), (b"content-type", b"application/json"),
                (b"authorization", b"Bearer " + b"x" * 300), (b"idempotency-key", b"k-1")],
}  # fmt: skip
QUERY = {"db.system": "postgresql", "db.name": "desk", "db.user": "postgres",
         "net.peer.name": "127.0.0.1", "net.peer.port": 5432,
         "db.statement": "SELECT version FROM events WHERE stream_id = $1"}  # fmt: skip


class _Dropped(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def bare(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"{}", "more_body": False}


async def _send(message: Any) -> None:
    pass


async def per_call(app: Callable[..., Awaitable[None]], n: int) -> float:
    for _ in range(n // 10):
        await app(SCOPE, _receive, _send)
    began = time.perf_counter()
    for _ in range(n):
        await app(SCOPE, _receive, _send)
    return (time.perf_counter() - began) / n * 1e6


def query_span(tracer: trace.Tracer, n: int, quietly: bool) -> float:
    """A query's span as the asyncpg instrumentation opens one, inside a request's span."""
    with tracer.start_as_current_span("POST /requests", kind=SpanKind.SERVER):
        began = time.perf_counter()
        for _ in range(n):
            if quietly and not is_instrumentation_enabled():
                continue  # what the instrumentation does when told to be quiet
            with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT, attributes=QUERY):
                pass
        return (time.perf_counter() - began) / n * 1e6


def event_context(tracer: trace.Tracer, n: int) -> float:
    with tracer.start_as_current_span("POST /requests", kind=SpanKind.SERVER):
        began = time.perf_counter()
        for _ in range(n):
            tracecontext.current()
        return (time.perf_counter() - began) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    n = parser.parse_args().requests
    baseline = asyncio.run(per_call(bare, n))
    print(f"bare ASGI app (baseline): {baseline:.1f} µs a request")
    for ratio in (1.0, 0.0):
        provider = TracerProvider(sampler=ParentBased(root=_WorkStarts(ratio)))
        provider.add_span_processor(BatchSpanProcessor(_Dropped()))
        tracer = provider.get_tracer("bench")
        middleware = OpenTelemetryMiddleware(
            bare, exclude_spans=["receive", "send"], tracer_provider=provider
        )
        wrapped = asyncio.run(per_call(middleware, n))
        loud = query_span(tracer, n, quietly=False)
        with quiet():
            hushed = query_span(tracer, n, quietly=True)
        print(
            f"ratio {ratio}: ASGI middleware {wrapped - baseline:.1f} µs a request "
            f"({wrapped / baseline:.1f}x the bare app); a query's span {loud:.1f} µs, "
            f"quiet {hushed:.2f} µs; an event's trace context {event_context(tracer, n):.1f} µs"
        )
        provider.shutdown()


if __name__ == "__main__":
    main()
