"""Test helpers for reading what landed on a real Kafka topic."""

from __future__ import annotations


async def consume_all(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:  # type: ignore[type-arg]
    """Read a topic from the beginning until `expected` records arrived or `timeout` passed."""
    import asyncio
    import time

    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    records: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
        await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


async def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """A topic of that exact name (a dead-letter twin, say) on the real broker."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


CREATED = {
    "ticket_id": "t-1",
    "occurred_at": "2026-03-02T09:00:00+00:00",
    "key": "SPT-1",
    "policy_id": "erp-vendor",
    "request_type": "SPT",
    "priority": "high",
    "subject": "Erreur SwissDec",
    "description": "La transmission échoue",
    "organisation_id": "acme",
    "requester_id": "anne@acme.example",
    "created_by": "anne@acme.example",
    "channel": "portal",
}


async def delete_topic(bootstrap: str, name: str) -> None:
    """Remove the topic from the broker."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


def ticket_created(event_id: str, ticket: str = "t-1", data: dict | None = None) -> tuple:  # type: ignore[type-arg]
    """A `TicketCreated` of `ticket` as (key, value, headers), as the relay publishes it."""
    from datetime import UTC, datetime

    from desk_contracts.envelope import Envelope

    return Envelope(
        id=event_id,
        type="TicketCreated",
        source="/test",
        subject=ticket,
        time=datetime.now(UTC),
        data={**CREATED, "ticket_id": ticket, **(data or {})},
    ).to_kafka()
