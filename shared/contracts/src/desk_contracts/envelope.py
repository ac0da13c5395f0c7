"""CloudEvents 1.0 envelope in Kafka's binary content mode.

Attributes travel as `ce_*` headers, the JSON payload is the record value, the ticket id is the
record key, so any Kafka tool can read what we publish. A ticket event published by workflow also
carries the request's state after it (`desk_contracts.state`) in the `request-state` header.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from desk_contracts.state import STATE_HEADER, STATE_SCHEMA_HEADER, RequestState

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/json"

# CloudEvents extension attributes of ours (lower-case alphanumerics, per the spec)
CORRELATION_ID = "correlationid"
CAUSATION_ID = "causationid"
SCHEMA_VERSION = "schemaversion"
STREAM_VERSION = "streamversion"

REQUIRED = ("id", "type", "source", "specversion")
MAX_ATTRIBUTE = 1000  # characters of one CloudEvents attribute (ids, names, times, extensions)


class MalformedEnvelope(ValueError):
    """A Kafka record that is not a CloudEvent we can read; the message says why."""


def dataschema_for(event_type: str, schema_version: int) -> str:
    return f"urn:desk:schema:{event_type}:v{schema_version}"


# the headers every record carries alike, encoded once
_SPEC_VERSION_HEADER = ("ce_specversion", SPEC_VERSION.encode())
_CONTENT_TYPE_HEADER = ("content-type", CONTENT_TYPE.encode())
_STATE_SCHEMA_HEADER = (STATE_SCHEMA_HEADER, RequestState.urn().encode())


def kafka_record(
    *,
    id: str,
    type: str,
    source: str,
    subject: str,
    time: datetime,
    data: Mapping[str, Any],
    schema_version: int,
    extensions: Mapping[str, str],
    request_state: Mapping[str, Any] | None,
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the Kafka record of one event: the wire format, in one place.

    `Envelope.to_kafka` is this; the relay calls it directly, without making an `Envelope` for
    every event it publishes. `extensions` are the attributes beyond the spec's own, in order."""
    headers = [
        _SPEC_VERSION_HEADER,
        ("ce_id", id.encode()),
        ("ce_type", type.encode()),
        ("ce_source", source.encode()),
        ("ce_subject", subject.encode()),
        ("ce_time", time.isoformat().encode()),
        ("ce_dataschema", dataschema_for(type, schema_version).encode()),
        ("ce_" + SCHEMA_VERSION, str(schema_version).encode()),
    ]
    headers += [("ce_" + name, value.encode()) for name, value in extensions.items()]
    headers.append(_CONTENT_TYPE_HEADER)
    if request_state is not None:
        headers.append((STATE_HEADER, _json(request_state)))
        headers.append(_STATE_SCHEMA_HEADER)
    return subject.encode(), _json(data), headers


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    source: str
    subject: str
    time: datetime
    data: Mapping[str, Any]
    schema_version: int = 1
    extensions: Mapping[str, str] = field(default_factory=dict)
    request_state: Mapping[str, Any] | None = None  # workflow's published state, as JSON data

    @property
    def dataschema(self) -> str:
        return dataschema_for(self.type, self.schema_version)

    @property
    def correlation_id(self) -> str | None:
        return self.extensions.get(CORRELATION_ID)

    def to_kafka(self) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
        """Key, value and headers of the Kafka record."""
        return kafka_record(
            id=self.id,
            type=self.type,
            source=self.source,
            subject=self.subject,
            time=self.time,
            data=self.data,
            schema_version=self.schema_version,
            extensions=self.extensions,
            request_state=self.request_state,
        )

    @classmethod
    def from_kafka(
        cls, key: bytes | None, value: bytes | None, headers: Iterable[tuple[str, bytes]]
    ) -> Envelope:
        attributes: dict[str, str] = {}
        state: bytes | None = None
        for name, raw in headers:
            if name == STATE_HEADER:
                state = raw
            elif name.startswith("ce_"):
                try:
                    attributes[name[3:]] = raw.decode()
                except UnicodeDecodeError:
                    raise MalformedEnvelope(f"header {name} is not UTF-8") from None
        for name, text in attributes.items():  # ids and names end up in tables and headers
            if len(text) > MAX_ATTRIBUTE or not text.isprintable():
                raise MalformedEnvelope(
                    f"header ce_{name} is longer than {MAX_ATTRIBUTE} characters or holds a "
                    "control character"
                )
        missing = [name for name in REQUIRED if not attributes.get(name)]
        if missing:
            raise MalformedEnvelope(f"missing CloudEvents attributes: {', '.join(missing)}")
        if attributes["specversion"] != SPEC_VERSION:
            raise MalformedEnvelope(f"unsupported specversion {attributes['specversion']!r}")
        if value is None:
            raise MalformedEnvelope("record has no value")
        try:
            data = json.loads(value)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise MalformedEnvelope(f"value is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise MalformedEnvelope("value is not a JSON object")
        try:
            time = datetime.fromisoformat(attributes.get("time", ""))
            schema_version = int(attributes.get(SCHEMA_VERSION, "1"))
        except ValueError as error:
            raise MalformedEnvelope(f"bad attribute: {error}") from None
        subject = attributes.get("subject") or (key.decode(errors="replace") if key else "")
        if len(subject) > MAX_ATTRIBUTE or not subject.isprintable():
            raise MalformedEnvelope("the record's key holds a control character or is too long")
        known = {"specversion", "id", "type", "source", "subject", "time", "dataschema"}
        extensions = {
            name: val for name, val in attributes.items() if name not in known | {SCHEMA_VERSION}
        }
        return cls(
            request_state=_state(state),
            id=attributes["id"],
            type=attributes["type"],
            source=attributes["source"],
            subject=subject,
            time=time,
            data=data,
            schema_version=schema_version,
            extensions=extensions,
        )


# made once: `json.dumps` with other than its default options builds an encoder at every call
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _json(data: Mapping[str, Any]) -> bytes:
    """Compact JSON in UTF-8, as every record's value and `request-state` header are written."""
    return _ENCODER.encode(data).encode()


def _state(raw: bytes | None) -> Mapping[str, Any] | None:
    """The `request-state` header's JSON object (validated by its readers, `state_of`)."""
    if raw is None:
        return None
    try:
        state = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedEnvelope(f"header {STATE_HEADER} is not JSON: {error}") from None
    if not isinstance(state, dict):
        raise MalformedEnvelope(f"header {STATE_HEADER} is not a JSON object")
    return state
