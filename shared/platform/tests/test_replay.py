"""Replaying a topic from the beginning against the real broker: every event once, in order,
malformed records counted, no consumer group offsets touched."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from desk_contracts.envelope import Envelope
from desk_platform.replay import export

pytestmark = pytest.mark.integration


async def test_export_writes_every_event_as_a_json_line(kafka_bootstrap: str, new_topic) -> None:
    topic = await new_topic("replay", partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    for n in range(30):
        key, value, headers = Envelope(
            id=f"e-{n}",
            type="TicketCreated",
            source="/t",
            subject=f"t-{n % 4}",
            time=datetime(2026, 3, 2, tzinfo=UTC),
            data={"n": n},
            extensions={"streamversion": str(n // 4 + 1)},
        ).to_kafka()
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    await producer.send_and_wait(topic, b"garbage", key=b"t-0")
    await producer.stop()

    out, err = io.StringIO(), io.StringIO()
    exported, malformed = await export(kafka_bootstrap, [topic], out, err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (exported, malformed) == (30, 1)
    assert sorted(line["id"] for line in lines) == sorted(f"e-{n}" for n in range(30))
    for ticket in {line["subject"] for line in lines}:  # per-ticket order kept
        versions = [int(line["streamversion"]) for line in lines if line["subject"] == ticket]
        assert versions == sorted(versions)
    assert "31/31 records" in err.getvalue()
