"""The directory topic as the tests and the local system see it: `publish_directory` puts
directory events on it as the portal's relay does (CloudEvents, key = stream id), for tests of
the services' feeds without a portal; `records_on` counts what it holds (the local system waits
for the portal's first import before it starts the services)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from desk_contracts.directory import DirectoryEvent
from desk_contracts.envelope import STREAM_VERSION, Envelope

SOURCE = "/desk/portal"  # the portal's relay, whose records these stand for


async def publish_directory(
    bootstrap_servers: str, topic: str, events: Sequence[DirectoryEvent]
) -> None:
    """Publish `events` on `topic` in order, as the portal's relay does: each a CloudEvent of
    its type, keyed by its stream id, numbered in its stream."""
    versions: dict[str, int] = {}
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, enable_idempotence=True, acks="all"
    )
    await producer.start()
    try:
        sent = []
        for event in events:
            versions[event.stream_id] = versions.get(event.stream_id, 0) + 1
            key, value, headers = Envelope(
                id=str(uuid.uuid4()),
                type=event.event_type,
                source=SOURCE,
                subject=event.stream_id,
                time=event.occurred_at,
                data=event.model_dump(mode="json"),
                schema_version=event.schema_version,
                extensions={STREAM_VERSION: str(versions[event.stream_id])},
            ).to_kafka()
            sent.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*sent)  # every record acknowledged
    finally:
        await producer.stop()


async def records_on(bootstrap_servers: str, topic: str, timeout: float = 30.0) -> int:
    """How many records `topic` holds; RuntimeError when it has not existed with a leader for
    each partition within `timeout` seconds (a topic just created takes a moment)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            [described] = await admin.describe_topics([topic])
            found = described.get("partitions") or []
            if (
                not described.get("error_code")
                and found
                and all(p.get("leader", -1) >= 0 for p in found)
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no topic {topic} at {bootstrap_servers}: create it first")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in found]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
    finally:
        await consumer.stop()
    return sum(ends[tp] - starts[tp] for tp in partitions)
