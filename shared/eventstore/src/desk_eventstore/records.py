"""Rows of the event store as plain values, their mapping to and from contract events, and the
Kafka record the relay publishes for each."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from desk_contracts.base import Event, event_from_data, event_from_json
from desk_contracts.envelope import (
    CAUSATION_ID,
    CORRELATION_ID,
    STREAM_VERSION,
    Envelope,
    kafka_record,
)
from desk_contracts.state import STATE_METADATA
from desk_eventstore import tracecontext


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended."""

    event_id: uuid.UUID
    event_type: str
    payload: Mapping[str, Any]
    schema_version: int = 1
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_event(
        cls,
        event: Event,
        *,
        event_id: uuid.UUID | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> NewEvent:
        """`event` to append, with `metadata` and the current span's trace context (unless
        `metadata` names one: the work's own, when it runs outside its caller's context)."""
        return cls(
            event_id=event_id or uuid.uuid4(),
            event_type=event.event_type,
            payload=event.model_dump(mode="json"),
            schema_version=event.schema_version,
            metadata={**tracecontext.current(), **(metadata or {})},
        )


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: with its stream version and global position."""

    global_position: int
    stream_id: str
    stream_version: int
    event_id: uuid.UUID
    event_type: str
    schema_version: int
    payload: Mapping[str, Any]
    metadata: Mapping[str, Any]
    recorded_at: datetime

    def to_event(self) -> Event:
        """The current version of the contract event (old versions upcast on read)."""
        return event_from_data(self.event_type, self.schema_version, dict(self.payload))

    def to_envelope(self, source: str) -> Envelope:
        """The event as a CloudEvent from `source`: the one `to_kafka` publishes."""
        return Envelope(**self._attributes(source))

    def to_kafka(self, source: str) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Key, value and headers of the event's Kafka record, as the relay publishes it: those
        of `to_envelope(source).to_kafka()`, without making the envelope."""
        return kafka_record(**self._attributes(source))

    def _attributes(self, source: str) -> dict[str, Any]:
        """The event's CloudEvent attributes from `source`: an `Envelope`'s fields, which are
        `kafka_record`'s arguments."""
        return {
            "id": str(self.event_id),
            "type": self.event_type,
            "source": source,
            "subject": self.stream_id,
            "time": self.recorded_at,
            "data": self.payload,
            "schema_version": self.schema_version,
            "extensions": self._extensions(),
            "request_state": self.metadata.get(STATE_METADATA),
        }

    def _extensions(self) -> dict[str, str]:
        """The CloudEvents extensions: the stream version, and the correlation and causation
        ids and the trace context (the distributed-tracing extension) of the metadata when it
        holds them."""
        extensions = {STREAM_VERSION: str(self.stream_version)}
        for name in (CORRELATION_ID, CAUSATION_ID, *tracecontext.FIELDS):
            value = self.metadata.get(name)
            if value:
                extensions[name] = str(value)
        return extensions


class LoggedEvent(NamedTuple):
    """An event as a fold of the whole log reads it (`store.read_all_payloads`): its position,
    stream and version, type and time, and its payload as the stored JSON text; no ids, no
    metadata."""

    global_position: int
    stream_id: str
    stream_version: int
    event_type: str
    schema_version: int
    payload: str
    recorded_at: datetime

    def to_event(self) -> Event:
        """The current version of the contract event, as `RecordedEvent.to_event` gives it."""
        return event_from_json(self.event_type, self.schema_version, self.payload)
