"""The W3C trace context an event carries, so a trace follows a request across the services.

An event appended while a span is current keeps that span's `traceparent` in its metadata;
the relay publishes it as the CloudEvents distributed-tracing extension (header
`ce_traceparent`) and continues the trace when it sends the event;
a consumer handles the record in a span whose parent it names. Being in the event, the link
survives the outbox, a replay and a re-drive. Without an SDK installed (or with none current)
there is no span to record, and events carry nothing. `tracestate` is left out: a caller may
send one of several kilobytes, longer than any header an event may carry
(`desk_contracts.envelope.MAX_ATTRIBUTE`), and nothing of ours reads it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import (
    _SUPPRESS_INSTRUMENTATION_KEY,  # the instrumentations' own switch (their utils set it)
    Context,
    attach,
    detach,
    set_value,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
FIELDS = (TRACEPARENT,)

_PROPAGATOR = TraceContextTextMapPropagator()


def current() -> dict[str, str]:
    """The current span's trace context as `{"traceparent": ...}`; empty without one."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return {TRACEPARENT: carrier[TRACEPARENT]} if TRACEPARENT in carrier else {}


def context_of(carrier: Mapping[str, Any]) -> Context:
    """The trace context `carrier` (an event's metadata or extensions) names, for a span to
    continue it; an empty context when it names none or a malformed one (never an error:
    the value came from outside)."""
    value = carrier.get(TRACEPARENT)
    if not isinstance(value, str):
        return Context()
    return _PROPAGATOR.extract({TRACEPARENT: value})


def without_trace(headers: Iterable[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """A copy of a record's `headers` without the `traceparent` the sending instrumentation
    adds (it adds the sender's own): a record copied to a dead-letter topic, or re-driven from
    one, carries one, not one per copy."""
    return [(name, value) for name, value in headers if name != TRACEPARENT]


@contextmanager
def continuing(carrier: Mapping[str, Any]) -> Iterator[None]:
    """Inside the block, the trace `carrier` names is the current one (none when it names
    none): what is sent or appended there belongs to it."""
    token = attach(context_of(carrier))
    try:
        yield
    finally:
        detach(token)


def quiet_context() -> contextvars.Context:
    """A fresh context in which the instrumentations make no spans (a task shared by many
    callers, such as a group commit's, whose queries belong to no one trace)."""
    context = contextvars.Context()
    context.run(attach, set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    return context
