"""The directory on its topic for a system without a portal yet (development, tests).

The portal owns the directory and publishes its events on the `directory` topic; until it runs
here, `seed_directory` publishes the shipped directory's import (`import_events`) on an empty
topic, as the portal's relay would (CloudEvents, key = stream id), so that the services, which
read the directory from the topic only, know the demonstration's people.

    uv run python deploy/local/directory_seed.py [--topic-prefix P]   # KAFKA_BOOTSTRAP_SERVERS

Needs only aiokafka, desk_contracts and desk_policies (docker-compose's one-shot `topics` runs
it after creating the topics).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from desk_contracts.directory import DirectoryEvent
from desk_contracts.envelope import STREAM_VERSION, Envelope
from desk_contracts.topics import DIRECTORY
from desk_policies.directory import import_events, load_directory

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


async def seed(bootstrap_servers: str, topic: str) -> int:
    """The shipped directory's import on `topic` unless the topic has records already; how
    many events were published."""
    if await records_on(bootstrap_servers, topic):
        return 0
    events = import_events(load_directory(), now=datetime.now(UTC))
    await publish_directory(bootstrap_servers, topic, events)
    return len(events)


def seed_directory(bootstrap_servers: str, topic_prefix: str = "") -> int:
    """`seed` on the directory topic of `topic_prefix`, from code that runs no event loop."""
    return asyncio.run(seed(bootstrap_servers, topic_prefix + DIRECTORY))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--topic-prefix", default=os.environ.get("TOPIC_PREFIX", ""))
    args = parser.parse_args()
    if not args.bootstrap:
        parser.error("no --bootstrap and KAFKA_BOOTSTRAP_SERVERS is not set")
    published = seed_directory(args.bootstrap, args.topic_prefix)
    print(f"{published} directory events published on {args.topic_prefix}{DIRECTORY}")


if __name__ == "__main__":
    main()
