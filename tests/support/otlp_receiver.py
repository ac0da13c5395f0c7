"""A local OTLP/HTTP trace receiver for the tests: what the processes export, kept as spans.

The processes export with the OpenTelemetry SDK's own OTLP exporter (protobuf over HTTP, to
`<endpoint>/v1/traces`) as they would to a collector; the receiver decodes each export with
the OTLP protocol's own messages and keeps every span with the `service.name` of the process
that sent it, also as one JSON line per span in a file (to read when a test fails).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass(frozen=True)
class Span:
    """One exported span, as a test reads it."""

    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root


class Receiver:
    """The spans received so far (thread-safe: the HTTP server runs in its own threads)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.url = ""
        self._spans: list[Span] = []
        self._lock = threading.Lock()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._spans)

    def take(self, body: bytes) -> None:
        """Keep the spans of one OTLP export request."""
        request = ExportTraceServiceRequest.FromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            service = attributes.get("service.name", "")
            for scope_spans in resource_spans.scope_spans:
                spans += [
                    Span(
                        service,
                        span.name,
                        span.kind,
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex(),
                    )
                    for span in scope_spans.spans
                ]
        with self._lock:
            self._spans += spans
            with self.file.open("a") as out:
                out.writelines(json.dumps(asdict(span)) + "\n" for span in spans)


@contextmanager
def otlp_receiver(file: Path) -> Iterator[Receiver]:
    """A receiver listening on a free loopback port (its `url` is the OTLP endpoint to set)."""
    receiver = Receiver(file)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path != "/v1/traces":
                self.send_error(404)
                return
            receiver.take(body)
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the spans file says what came in

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
