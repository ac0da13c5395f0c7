"""The Kafka record of a stored event, byte for byte: what consumers of every topic read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

from desk_contracts.envelope import Envelope
from desk_eventstore.records import RecordedEvent

COMMENTED = RecordedEvent(
    global_position=42,
    stream_id="T-7",
    stream_version=3,
    event_id=uuid.UUID("0b7e2c36-5f1a-4d8e-9c2b-1f3a4e5d6c7b"),
    event_type="TicketCommented",
    schema_version=2,
    payload={"body": 'Prime de Noël "payée"\n', "n": [1, 2.5, None, True], "at": {}},
    metadata={"correlationid": "c-1", "causationid": "k-2", "request": {"status": "open", "v": 3}},
    recorded_at=datetime(2026, 3, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=1))),
)


def test_the_record_of_an_event_with_its_request_state() -> None:
    key, value, headers = COMMENTED.to_kafka("/desk/workflow")
    assert key == b"T-7"
    assert value == '{"body":"Prime de Noël \\"payée\\"\\n","n":[1,2.5,null,true],"at":{}}'.encode()
    assert headers == [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"0b7e2c36-5f1a-4d8e-9c2b-1f3a4e5d6c7b"),
        ("ce_type", b"TicketCommented"),
        ("ce_source", b"/desk/workflow"),
        ("ce_subject", b"T-7"),
        ("ce_time", b"2026-03-02T09:30:15.123456+01:00"),
        ("ce_dataschema", b"urn:desk:schema:TicketCommented:v2"),
        ("ce_schemaversion", b"2"),
        ("ce_streamversion", b"3"),
        ("ce_correlationid", b"c-1"),
        ("ce_causationid", b"k-2"),
        ("content-type", b"application/json"),
        ("request-state", b'{"status":"open","v":3}'),
        ("request-state-schema", b"urn:desk:schema:RequestState:v1"),
    ]


def test_an_empty_correlation_id_is_left_out() -> None:
    created = RecordedEvent(
        global_position=1,
        stream_id="T-1",
        stream_version=1,
        event_id=uuid.UUID(int=1),
        event_type="TicketCreated",
        schema_version=1,
        payload={"a": "b"},
        metadata={"correlationid": ""},
        recorded_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    key, value, headers = created.to_kafka("/desk/intake")
    assert (key, value) == (b"T-1", b'{"a":"b"}')
    assert [name for name, _ in headers] == [
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_subject",
        "ce_time",
        "ce_dataschema",
        "ce_schemaversion",
        "ce_streamversion",
        "content-type",
    ]


def test_the_record_is_the_envelopes_and_reads_back_as_it() -> None:
    record = COMMENTED.to_kafka("/desk/workflow")
    envelope = COMMENTED.to_envelope("/desk/workflow")
    assert record == envelope.to_kafka()
    assert Envelope.from_kafka(*record) == envelope
