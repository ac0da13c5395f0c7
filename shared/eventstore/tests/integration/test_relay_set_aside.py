"""No record stops the relay: one Kafka refuses for good is set aside, with its stream behind it,
and everything else goes on (real PostgreSQL and Kafka)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka_support import consume_all

from desk_contracts.topics import dead_letter
from desk_eventstore.records import NewEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import append

pytestmark = pytest.mark.integration


async def small_topic(bootstrap: str, max_message_bytes: int | None = 10_000) -> str:
    """A fresh topic refusing records over `max_message_bytes` (None: the broker's default of
    1 MiB), and its dead-letter twin."""
    name = f"relay-small-{uuid.uuid4().hex[:10]}"
    config = {} if max_message_bytes is None else {"max.message.bytes": str(max_message_bytes)}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(name, 3, 1, topic_configs=config),
                NewTopic(dead_letter(name), 3, 1),
            ]
        )
    finally:
        await admin.close()
    return name


async def add(pool: asyncpg.Pool, stream: str, size: int = 10) -> str:
    event = NewEvent(uuid.uuid4(), "Something", {"text": "x" * size})
    async with pool.acquire() as conn:
        await append(conn, stream, None, [event])
    return str(event.event_id)


async def relaying(
    database_url: str, schema: str, bootstrap: str, topic: str, until: Callable[[], Awaitable[bool]]
) -> OutboxRelay:
    """Run a relay until `until()` holds (10 s at most), then stop it."""
    producer = idempotent_producer(bootstrap, "test")
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(
        database_url, schema, producer, lambda _: topic, source="/t", bootstrap_servers=bootstrap
    )
    task = asyncio.create_task(relay.run(stop))
    try:
        for _ in range(100):
            if await until():
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await task
        await producer.stop()
    return relay


def ids(records: list) -> list[str]:  # type: ignore[type-arg]
    return [dict(r.headers)["ce_id"].decode() for r in records]


async def test_a_record_over_the_topics_limit_is_set_aside_with_its_stream_and_the_rest_goes_on(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str
) -> None:
    topic = await small_topic(kafka_bootstrap)
    a1 = await add(pool, "A")
    big = await add(pool, "B", size=20_000)  # over the topic's max.message.bytes
    b2 = await add(pool, "B")
    a2 = await add(pool, "A")
    c1 = await add(pool, "C")

    async def caught_up() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT position >= 5 FROM relay_checkpoints"))

    relay = await relaying(database_url, schema, kafka_bootstrap, topic, caught_up)
    assert await caught_up(), "the relay is stuck behind the refused record"
    assert relay.set_aside == 2
    # later, after a restart: the stream stays behind its refused event, others go on
    b3 = await add(pool, "B")
    d1 = await add(pool, "D")

    async def done() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT position >= 7 FROM relay_checkpoints"))

    await relaying(database_url, schema, kafka_bootstrap, topic, done)

    published = ids(await consume_all(kafka_bootstrap, topic, 5, timeout=5))
    assert set(published) == {a1, a2, c1, d1}
    assert published.index(a1) < published.index(a2) or published.count(a1) > 1
    dead = {
        dict(r.headers)["ce_id"].decode(): r
        for r in await consume_all(kafka_bootstrap, dead_letter(topic), 3, timeout=10)
    }
    assert set(dead) == {big, b2, b3}
    refused = dict(dead[big].headers)
    assert dead[big].value == b""  # the record that did not fit is described, not copied
    assert refused["dlt_error"].startswith(b"record of 20")
    assert refused["dlt_error"].endswith(f"over the limit of 9488 bytes of {topic}".encode())
    assert refused["dlt_origin_topic"] == topic.encode()
    assert int(refused["dlt_original_bytes"]) > 20_000
    assert dead[b2].value and dict(dead[b2].headers)["dlt_error"] == (
        f"set aside behind event {big} of the same stream".encode()
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, stream_id, reason FROM dead_letters WHERE resolved_at IS NULL"
        )
    reasons = {row["event_id"]: row["reason"] for row in rows}
    assert set(reasons) == {big, b2, b3}
    assert reasons[big] == refused["dlt_error"].decode()
    assert reasons[b3] == f"set aside behind event {big} of the same stream"


async def test_an_event_over_the_relays_limit_is_set_aside_before_it_is_sent(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str
) -> None:
    topic = await small_topic(kafka_bootstrap, None)
    huge = await add(pool, "A", size=1_200_000)  # a 1.2 MB participant address, say
    after = await add(pool, "B")

    async def caught_up() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT position >= 2 FROM relay_checkpoints"))

    await relaying(database_url, schema, kafka_bootstrap, topic, caught_up)
    assert ids(await consume_all(kafka_bootstrap, topic, 1, timeout=5)) == [after]
    async with pool.acquire() as conn:
        reason = await conn.fetchval("SELECT reason FROM dead_letters WHERE event_id = $1", huge)
    assert reason is not None and f"over the limit of 1000000 bytes of {topic}" in reason
