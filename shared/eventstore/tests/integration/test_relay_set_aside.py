"""No record stops the relay: one Kafka refuses for good is set aside, with its stream behind it,
and everything else goes on; after a database outage it resumes at once (real PostgreSQL and
Kafka)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from kafka_support import consume_all
from tcp_proxy import TcpProxy

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES, dead_letter
from desk_eventstore.records import NewEvent
from desk_eventstore.relay import MAX_RECORD_BYTES, OutboxRelay, idempotent_producer
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
        if size < MAX_EVENT_BYTES:
            await append(conn, stream, None, [event])
        else:  # the store refuses it now: one stored before that bound, or by hand
            await conn.execute(
                """INSERT INTO events (stream_id, stream_version, event_id, event_type, payload)
                   SELECT $1, coalesce(max(stream_version), 0) + 1, $2, $3, $4::jsonb
                   FROM events WHERE stream_id = $1""",
                stream,
                event.event_id,
                event.event_type,
                json.dumps(event.payload),
            )
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
    assert MAX_RECORD_BYTES == MAX_MESSAGE_BYTES - 512  # the topics' own bound, less framing
    assert reason is not None and f"over the limit of {MAX_RECORD_BYTES} bytes of {topic}" in reason


async def test_the_relay_resumes_within_two_seconds_of_the_databases_return(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str
) -> None:
    topic = await small_topic(kafka_bootstrap, None)
    outage = await TcpProxy.to(database_url)
    producer = idempotent_producer(kafka_bootstrap, "test")
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(outage.url(database_url), schema, producer, lambda _: topic, source="/t")
    task = asyncio.create_task(relay.run(stop))

    async def published(count: int, within: float) -> float:
        started = time.monotonic()
        while relay.published < count and time.monotonic() - started < within:
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    try:
        await add(pool, "A")
        await published(1, 10)
        assert relay.published == 1
        await outage.cut()
        await add(pool, "A")  # written meanwhile (this pool does not go through the proxy)
        await asyncio.sleep(8)  # long enough for a doubling back-off to reach 8 s
        assert relay.published == 1
        await outage.restore()
        waited = await published(2, 10)
    finally:
        stop.set()
        await task
        await producer.stop()
        await outage.cut()
    assert relay.published == 2
    assert waited < 2.0, f"published {waited:.1f} s after the database came back"


async def test_a_record_the_broker_refuses_all_the_same_is_set_aside_on_the_retry(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str
) -> None:
    """A relay that does not know the topic's limit (not read from the broker): the broker
    refuses the record; the relay learns the topic takes less, and sets it aside on the retry
    (after a restart of the process, should the idempotent producer have become unusable)."""
    topic = await small_topic(kafka_bootstrap)
    big = await add(pool, "B", size=20_000)
    after = await add(pool, "C")

    async def caught_up() -> bool:
        async with pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT position >= 2 FROM relay_checkpoints"))

    for _ in range(2):  # the second run is the restarted process, if the first one ended
        producer = idempotent_producer(kafka_bootstrap, "test")
        await producer.start()
        stop = asyncio.Event()
        blind = OutboxRelay(database_url, schema, producer, lambda _: topic, source="/t")
        task = asyncio.create_task(blind.run(stop))
        try:
            for _ in range(100):
                if task.done() or await caught_up():
                    break
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            with contextlib.suppress(kafka_errors.OutOfOrderSequenceNumber):
                await task
            await producer.stop()
        if await caught_up():
            break
    assert await caught_up(), "the relay is stuck behind the refused record"
    assert after in ids(await consume_all(kafka_bootstrap, topic, 1, timeout=5))
    async with pool.acquire() as conn:
        reason = await conn.fetchval("SELECT reason FROM dead_letters WHERE event_id = $1", big)
    assert reason is not None and reason.startswith("record of 20")
    assert reason.endswith(f"bytes of {topic}")


async def test_a_relay_that_can_renew_its_producer_gets_past_the_refused_record_alone(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str
) -> None:
    """The same refusal with `renew_producer` (as every service runs its relay): one run of the
    relay gets past the record, replacing its producer if the refusal left it unusable."""
    topic = await small_topic(kafka_bootstrap)
    big = await add(pool, "B", size=20_000)
    after = await add(pool, "C")
    producers: list[AIOKafkaProducer] = []

    async def renew() -> AIOKafkaProducer:
        producer = idempotent_producer(kafka_bootstrap, "test")
        await producer.start()
        producers.append(producer)
        return producer

    stop = asyncio.Event()
    relay = OutboxRelay(
        database_url, schema, await renew(), lambda _: topic, source="/t", renew_producer=renew
    )
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(15):
            while not (await consume_all(kafka_bootstrap, topic, 1, timeout=1)):
                assert not task.done(), "the relay ended instead of renewing its producer"
    finally:
        stop.set()
        await task
        for producer in producers:
            await producer.stop()
    assert after in ids(await consume_all(kafka_bootstrap, topic, 1, timeout=5))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT reason FROM dead_letters WHERE event_id = $1", big)
