"""CloudEvents binary mode: what we write, we read back; what is malformed says why."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desk_contracts.envelope import Envelope, MalformedEnvelope


def test_round_trip_through_kafka_record() -> None:
    envelope = Envelope(
        id="e-1",
        type="TicketCreated",
        source="/desk/intake",
        subject="t-1",
        time=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        data={"subject": "Prime de Noël"},
        extensions={"correlationid": "c-9"},
    )
    key, value, headers = envelope.to_kafka()
    assert key == b"t-1"
    names = {name for name, _ in headers}
    assert {"ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "ce_dataschema"} <= names
    assert dict(headers)["ce_dataschema"] == b"urn:desk:schema:TicketCreated:v1"
    assert Envelope.from_kafka(key, value, headers) == envelope


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (b"{}", [], "missing CloudEvents attributes: id, type, source, specversion"),
        (b"not json", None, "value is not JSON"),
        (b"[1]", None, "value is not a JSON object"),
        (None, None, "record has no value"),
    ],
)
def test_malformed_records_say_why(
    value: bytes | None, headers: list[tuple[str, bytes]] | None, reason: str
) -> None:
    good = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e"),
        ("ce_type", b"T"),
        ("ce_source", b"/s"),
        ("ce_time", b"2026-01-01T00:00:00+00:00"),
    ]
    with pytest.raises(MalformedEnvelope, match=reason):
        Envelope.from_kafka(b"k", value, good if headers is None else headers)
