"""Test helper: a `DirectoryFeed` running on a directory topic of its own on the real Kafka,
with the events a test publishes there (as the portal's relay would)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from directory_topic import publish_directory

from desk_contracts.directory import DirectoryEvent
from desk_contracts.topics import DIRECTORY
from desk_platform.directory_feed import DirectoryFeed
from desk_platform.settings import Settings


@asynccontextmanager
async def directory_feed(
    kafka_bootstrap: str, events: Sequence[DirectoryEvent] = ()
) -> AsyncIterator[DirectoryFeed]:
    """A feed of a fresh directory topic holding `events`, running and caught up; stopped
    after. Publish more with `publish_directory(kafka_bootstrap, feed.topic, ...)`."""
    prefix = f"dir-{uuid.uuid4().hex[:8]}."
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(prefix + DIRECTORY, 3, 1)])
    finally:
        await admin.close()
    await publish_directory(kafka_bootstrap, prefix + DIRECTORY, events)
    settings = Settings(
        database_url="postgresql://unused",
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
    )
    feed = DirectoryFeed(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        await asyncio.wait_for(feed.wait_caught_up(), 30)
        yield feed
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until(holds: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until `holds()` (e.g. the feed has seen a change), polled every 50 ms."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        await asyncio.sleep(0.05)
