"""The faststream consumer wiring against the real Kafka and PostgreSQL servers.

Pins what we rely on: the offset is committed after the handler's transaction; a transient
failure is consumed again; a poison record goes to the dead-letter topic with its reason and the
consumer carries on; a duplicate is applied once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

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
from desk_platform.consumer import EventConsumer, PoisonMessage
from desk_platform.deadletter import ERROR, ORIGIN_TOPIC, DeadLetters

pytestmark = pytest.mark.integration


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    schema = "t_" + uuid.uuid4().hex[:12]
    pool = await open_store(database_url, schema)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE applied (event_id text, subject text)")
    yield pool
    async with pool.acquire() as conn:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    await pool.close()


async def test_poison_goes_to_dead_letters_duplicates_once_transient_retried(
    store: asyncpg.Pool, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("consumer", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))
    failures = {"flaky": 1}

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", envelope.id, envelope.subject)
        if failures.get(envelope.id, 0) > 0:
            failures[envelope.id] -= 1
            raise OSError("database went away")  # transient: the insert above rolls back

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    for key, value, headers in [
        record("ok-1"),
        (
            b"t-2",
            b"{not json",
            [
                ("ce_specversion", b"1.0"),
                ("ce_id", b"bad-json"),
                ("ce_type", b"TicketCreated"),
                ("ce_source", b"/x"),
                ("ce_time", b"2026-03-02T09:00:00+00:00"),
            ],
        ),
        record("no-subject", ticket="t-bad", data={"subject": None}),
        record("ok-1"),  # the same event delivered twice
        record("flaky"),
        record("ok-2", ticket="t-3"),
    ]:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(store, DeadLetters(producer), "test", handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id="g-" + topic)
    await broker.start()
    try:
        for _ in range(200):
            async with store.acquire() as conn:
                applied = [r["event_id"] for r in await conn.fetch("SELECT * FROM applied")]
            if len(applied) >= 3:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    dead = await consume_all(kafka_bootstrap, dead_letter(topic), 2)
    await producer.stop()

    assert sorted(applied) == ["flaky", "ok-1", "ok-2"]
    reasons = {dict(r.headers)["ce_id"].decode(): dict(r.headers)[ERROR].decode() for r in dead}
    assert set(reasons) == {"bad-json", "no-subject"}
    assert reasons["bad-json"].startswith("malformed envelope: value is not JSON")
    assert "invalid TicketCreated payload" in reasons["no-subject"]
    assert "subject" in reasons["no-subject"]
    assert all(dict(r.headers)[ORIGIN_TOPIC] == topic.encode() for r in dead)
    assert dead[0].value == b"{not json"  # the original bytes, untouched


async def test_a_failed_event_parks_its_ticket_until_redriven(
    store: asyncpg.Pool, kafka_bootstrap: str, database_url: str, new_topic
) -> None:
    from desk_platform.redrive import listing, redrive

    topic = await new_topic("parking", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))
    broken = {"first": True}

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if envelope.id == "t1-a" and broken["first"]:
            raise PoisonMessage("bug in the handler")
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", envelope.id, envelope.subject)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    for key, value, headers in [record("t1-a", "t1"), record("t1-b", "t1"), record("t2-a", "t2")]:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    group = "svc." + topic  # the shape of our groups: <service>.<topic>
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(store, DeadLetters(producer), group, handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id=group)

    async def applied() -> list[str]:
        async with store.acquire() as conn:
            return [r["event_id"] for r in await conn.fetch("SELECT event_id FROM applied")]

    await broker.start()
    try:
        for _ in range(100):
            if await applied() == ["t2-a"] and consumer.dead_lettered == 2:
                break
            await asyncio.sleep(0.1)
        assert await applied() == ["t2-a"]  # t1-b waits behind t1-a; t2 is not held up
        dead = await consume_all(kafka_bootstrap, dead_letter(topic), 2)
        assert (
            dict(dead[1].headers)[ERROR].decode() == "parked behind event t1-a of the same ticket"
        )

        key, value, headers = record("t1-c", "t1")  # arrives later: queues behind too
        await producer.send_and_wait(topic, value, key=key, headers=headers)
        for _ in range(100):
            if consumer.dead_lettered == 3:
                break
            await asyncio.sleep(0.1)
        schema = await store.fetchval("SELECT current_schema()")
        early = await redrive(database_url, schema, kafka_bootstrap, group, "t1", round_timeout=5)
        assert early.still_parked == ["t1-a", "t1-b", "t1-c"]  # not fixed: t1-a fails again
        assert await applied() == ["t2-a"]
        listed = await listing(database_url, schema)
        assert [line.split(" (")[0] for line in listed[:3]] == [
            f"{group}  ticket t1  event t1-a",
            f"{group}  ticket t1  event t1-b",
            f"{group}  ticket t1  event t1-c",
        ]
        assert listed[0].endswith("): bug in the handler") and "(parked, 2x" in listed[0]
        assert listed[1].endswith("): parked behind event t1-a of the same ticket")
        assert listed[3].startswith(f"{group}  ticket t1: 3 event(s) parked")

        broken["first"] = False  # the bug is fixed: re-drive the ticket
        done = await redrive(database_url, schema, kafka_bootstrap, group, "t1")
        assert (done.sent, done.dropped, done.still_parked) == (3, 0, [])
    finally:
        await broker.stop()
        await producer.stop()
    assert await applied() == ["t2-a", "t1-a", "t1-b", "t1-c"]
    assert await listing(database_url, schema) == ["no dead letters", "nothing parked"]


class CrashAfterSending(DeadLetters):
    """Writes the dead letter, then loses the connection (the process dies, the database goes
    away) before the consumer could park the ticket: the record is consumed again."""

    async def send(self, record: Any, group_id: str, reason: str) -> None:
        await super().send(record, group_id, reason)
        if not getattr(self, "crashed", False):
            self.crashed = True
            raise ConnectionResetError(104, "Connection reset by peer")


async def test_lost_connections_are_retried_and_a_dead_letter_applied_later_is_resolved(
    store: asyncpg.Pool, kafka_bootstrap: str, database_url: str, new_topic
) -> None:
    from desk_platform.redrive import listing

    topic = await new_topic("transient", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))
    attempts: dict[str, int] = {}

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        attempts[envelope.id] = attempts.get(envelope.id, 0) + 1
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", envelope.id, envelope.subject)
        if attempts[envelope.id] > 1:
            return
        if envelope.id == "cut":  # the server ends this session mid-handler (a restart, say)
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        if envelope.id == "mid-operation":  # what a crash left the connection in
            raise asyncpg.InternalClientError(
                "cannot switch to state 14; another operation (2) is in progress"
            )
        if envelope.id == "applied-later":  # fails once for good, then passes (see below)
            raise ValueError("not yet")

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    for event_id, ticket in [("cut", "t1"), ("mid-operation", "t2"), ("applied-later", "t3")]:
        key, value, headers = record(event_id, ticket)
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    broker = KafkaBroker(kafka_bootstrap)
    group = "svc." + topic
    consumer = EventConsumer(store, CrashAfterSending(producer), group, handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id=group)
    await broker.start()
    try:
        for _ in range(150):
            async with store.acquire() as conn:
                applied = [r["event_id"] for r in await conn.fetch("SELECT * FROM applied")]
            if len(applied) == 3:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
        await producer.stop()
    assert applied == ["cut", "mid-operation", "applied-later"]  # each once, in order
    assert attempts == {"cut": 2, "mid-operation": 2, "applied-later": 2}
    assert consumer.last_failure is not None and consumer.last_failure.startswith(
        "ConnectionResetError"
    )
    schema = await store.fetchval("SELECT current_schema()")
    async with store.acquire() as conn:
        register = await conn.fetch("SELECT event_id, reason, resolution FROM dead_letters")
    assert [tuple(row) for row in register] == [("applied-later", "ValueError: not yet", "applied")]
    assert await listing(database_url, schema) == ["no dead letters", "nothing parked"]


async def test_a_record_whose_ids_hold_nul_is_dead_lettered_and_the_consumer_goes_on(
    store: asyncpg.Pool, kafka_bootstrap: str, new_topic
) -> None:
    """NUL in ce_id, in ce_subject or in the key: PostgreSQL cannot store such an id, which
    once made registering the dead letter fail for good and the record come back forever."""
    topic = await new_topic("consumer-nul", partitions=1)
    await create_topic(kafka_bootstrap, dead_letter(topic))

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await conn.execute("INSERT INTO applied VALUES ($1, $2)", envelope.id, envelope.subject)

    def with_header(name: str, value: bytes | None, key: bytes = b"t-9") -> tuple:  # type: ignore[type-arg]
        _, body, headers = record("x")
        changed = [(n, value if n == name else v) for n, v in headers]
        return key, body, [(n, v) for n, v in changed if v is not None]

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    for key, value, headers in [
        with_header("ce_id", b"nul\x00id"),
        with_header("ce_subject", b"t\x009"),
        with_header("ce_subject", None, key=b"k\x00ey"),  # the subject is the key
        record("after", ticket="t-10"),
    ]:
        await producer.send_and_wait(topic, value, key=key, headers=headers)
    broker = KafkaBroker(kafka_bootstrap)
    consumer = EventConsumer(store, DeadLetters(producer), "test", handle, retry_delay=0.1)
    consumer.subscribe(broker, topic, group_id="g-" + topic)
    await broker.start()
    try:
        for _ in range(200):
            async with store.acquire() as conn:
                applied = [r["event_id"] for r in await conn.fetch("SELECT * FROM applied")]
            if applied:
                break
            await asyncio.sleep(0.1)
    finally:
        await broker.stop()
    dead = await consume_all(kafka_bootstrap, dead_letter(topic), 3)
    await producer.stop()
    assert applied == ["after"]
    reasons = [dict(r.headers)[ERROR].decode() for r in dead]
    assert len(reasons) == 3 and all(r.startswith("malformed envelope:") for r in reasons)
    assert all("control character" in reason for reason in reasons)
    async with store.acquire() as conn:
        parked = {r["stream_id"] for r in await conn.fetch("SELECT stream_id FROM parked")}
    assert parked == {"t-9", "k\\x00ey"}  # the key's NUL escaped where it is stored
