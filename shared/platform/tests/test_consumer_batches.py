"""Batches of records on the real Kafka and PostgreSQL servers: what a poll hands over is applied
in one transaction, and a record that fails in the middle of a batch is treated exactly as it
would be alone (the ones before it kept, its ticket parked, the others going on).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import KafkaBroker
from kafka_support import consume_all, create_topic
from kafka_support import ticket_created as record

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.topics import dead_letter
from desk_eventstore.db import open_store
from desk_platform.consumer import EventConsumer, PoisonMessage, Together
from desk_platform.deadletter import ERROR, DeadLetters

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = "t_" + uuid.uuid4().hex[:12]
    pool = await open_store(database_url, schema)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE applied (event_id text, subject text, tx xid8)")
    yield pool
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def applied_rows(store: asyncpg.Pool) -> list[asyncpg.Record]:
    async with store.acquire() as conn:
        return list(await conn.fetch("SELECT event_id, tx FROM applied ORDER BY ctid"))


async def test_a_batch_shares_a_transaction_and_a_poison_record_in_it_fails_alone(
    store: asyncpg.Pool, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("batches", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))
    # 60 events of 3 tickets, round robin; the 31st (of ticket b) is poison
    events = [(f"e-{n:02}", "abc"[n % 3]) for n in range(60)]
    poison = "e-31"

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await conn.execute(
            "INSERT INTO applied VALUES ($1, $2, pg_current_xact_id())",
            envelope.id,
            envelope.subject,
        )
        if envelope.id == poison:  # after writing: its work must be undone, not kept
            raise PoisonMessage("bug in the handler")

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    batch = [record(event_id, ticket) for event_id, ticket in events]
    batch.insert(10, record("e-05", "c"))  # a duplicate inside the batch: applied once
    for key, value, headers in batch:
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()

    group = "svc." + topic
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(store, DeadLetters(producer), group, handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:
        for _ in range(200):
            if len(await applied_rows(store)) >= 40 and consumer.dead_lettered >= 10:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # nothing more is coming
    finally:
        await broker.stop()
    dead = await consume_all(kafka_bootstrap, dead_letter(topic), 10)
    await producer.stop()

    rows = await applied_rows(store)
    ids = [row["event_id"] for row in rows]
    behind = [event_id for event_id, ticket in events if ticket == "b" and event_id > poison]
    expected = [e for e, _ in events if e != poison and e not in behind]
    assert ids == expected  # in order, each once, the poison's own write undone
    before = [row["tx"] for row in rows if row["event_id"] < poison]
    assert len(before) == 31 and len(set(before)) <= 3  # batches, not one commit each
    reasons = {dict(r.headers)["ce_id"].decode(): dict(r.headers)[ERROR].decode() for r in dead}
    assert reasons[poison] == "bug in the handler"
    assert set(reasons) == {poison, *behind}
    assert all(reasons[e] == f"parked behind event {poison} of the same ticket" for e in behind)
    async with store.acquire() as conn:
        inbox = {r["event_id"] for r in await conn.fetch("SELECT event_id FROM inbox")}
    assert inbox == set(expected)  # the failed ones are not recorded as applied


async def test_records_applied_as_sets_end_as_one_by_one_and_a_failing_set_goes_one_by_one(
    store: asyncpg.Pool, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("sets", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))
    events = [(f"e-{n:02}", "abc"[n % 3]) for n in range(60)]
    poison = "e-31"
    handled: list[str] = []
    sets: list[list[str]] = []

    async def write(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        await conn.executemany(
            "INSERT INTO applied VALUES ($1, $2, pg_current_xact_id())",
            [(envelope.id, envelope.subject) for envelope, _ in records],
        )

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        handled.append(envelope.id)
        await write(conn, [(envelope, event)])
        if envelope.id == poison:
            raise PoisonMessage("bug in the handler")

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        sets.append([envelope.id for envelope, _ in records])
        await write(conn, records)
        if any(envelope.id == poison for envelope, _ in records):  # after writing, as above
            raise PoisonMessage("bug in the set")

    takes_all = Together(lambda envelope, event: envelope.id != "e-45", apply)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    batch = [record(event_id, ticket) for event_id, ticket in events]
    batch.insert(10, record("e-05", "c"))  # a duplicate inside the batch: applied once
    for key, value, headers in batch:
        await producer.send(topic, value, key=key, headers=headers)
    await producer.flush()

    group = "svc." + topic
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(
        store, DeadLetters(producer), group, handle, retry_delay=0.1, together=takes_all
    )
    consumer.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:
        for _ in range(200):
            if len(await applied_rows(store)) >= 40 and consumer.dead_lettered >= 10:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # nothing more is coming
    finally:
        await broker.stop()
    dead = await consume_all(kafka_bootstrap, dead_letter(topic), 10)
    await producer.stop()

    ids = [row["event_id"] for row in await applied_rows(store)]
    behind = [event_id for event_id, ticket in events if ticket == "b" and event_id > poison]
    expected = [e for e, _ in events if e != poison and e not in behind]
    assert ids == expected  # in order, each once, the poison's own write undone
    assert max(len(s) for s in sets) > 10 and all(len(s) > 1 for s in sets)
    failed = next(s for s in sets if poison in s)
    up_to_poison = failed[: failed.index(poison) + 1]
    assert handled[: len(up_to_poison)] == up_to_poison  # the failed set, one by one to it
    assert "e-45" in handled  # one the set does not take is handled alone
    reasons = {dict(r.headers)["ce_id"].decode(): dict(r.headers)[ERROR].decode() for r in dead}
    assert reasons[poison] == "bug in the handler"
    assert set(reasons) == {poison, *behind}


async def test_a_header_that_is_not_utf8_is_dead_lettered_and_the_batch_goes_on(
    store: asyncpg.Pool, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("batch-bytes", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await conn.execute(
            "INSERT INTO applied VALUES ($1, $2, pg_current_xact_id())",
            envelope.id,
            envelope.subject,
        )

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    key, value, headers = record("bad-bytes", "t-1")
    hostile = [(name, b"\xff\xfe" if name == "ce_id" else v) for name, v in headers]
    for k, v, h in [record("before", "t-0"), (key, value, hostile), record("after", "t-2")]:
        await producer.send(topic, v, key=k, headers=h)
    await producer.flush()
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(store, DeadLetters(producer), "g", handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id="g-" + topic)
    await broker.start()
    try:
        for _ in range(100):
            if len(await applied_rows(store)) == 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    dead = await consume_all(kafka_bootstrap, dead_letter(topic), 1)
    await producer.stop()
    assert [row["event_id"] for row in await applied_rows(store)] == ["before", "after"]
    assert dict(dead[0].headers)[ERROR].decode().startswith("malformed envelope:")
