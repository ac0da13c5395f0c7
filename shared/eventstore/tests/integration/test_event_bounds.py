"""The store refuses, for every service alike, an event that could never be stored or
published, and the largest event it accepts fits in one record of a topic made as the deploy
scripts make them (`max.message.bytes` from `desk_contracts.topics`), on the real servers."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from desk_contracts.topics import MAX_EVENT_BYTES, MAX_MESSAGE_BYTES, TopicSpec
from desk_eventstore.records import NewEvent
from desk_eventstore.relay import idempotent_producer
from desk_eventstore.store import EventRefused, EventTooLarge, append, read_stream

pytestmark = pytest.mark.integration


def event(payload: dict[str, Any], metadata: dict[str, Any] | None = None) -> NewEvent:
    return NewEvent(uuid.uuid4(), "CommentAdded", payload, metadata=metadata or {})


def of_size(size: int) -> dict[str, str]:
    """A payload whose compact JSON is `size` bytes."""
    return {"body": "x" * (size - len('{"body":""}'))}


async def test_an_event_over_the_bound_is_refused_and_nothing_is_stored(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(EventTooLarge, match=f"more than the {MAX_EVENT_BYTES} allowed"):
            await append(conn, "T-big", 0, [event({"n": 1}), event(of_size(MAX_EVENT_BYTES + 1))])
        with pytest.raises(EventTooLarge):  # metadata counts too
            await append(conn, "T-big", 0, [event(of_size(MAX_EVENT_BYTES - 10), {"m": "x" * 20})])
        # non-ASCII text counts in UTF-8 bytes, as the relay publishes it
        with pytest.raises(EventTooLarge):
            await append(conn, "T-big", 0, [event({"body": "😀" * (MAX_EVENT_BYTES // 4)})])
        assert await read_stream(conn, "T-big") == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"body": "a\x00b"}, "NUL"),
        ({"body": ["ok", {"deep": "\x00"}]}, "NUL"),
        ({"body": "a\ud800b"}, "lone surrogate"),
        ({"n": float("nan")}, "not finite"),
        ({"n": float("inf")}, "not finite"),
    ],
)
async def test_an_event_that_cannot_be_stored_is_refused_with_the_reason(
    pool: asyncpg.Pool, payload: dict[str, Any], reason: str
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(EventRefused, match=reason):
            await append(conn, "T-bad", 0, [event(payload)])
        assert await read_stream(conn, "T-bad") == []


async def test_text_that_only_looks_like_an_escaped_nul_is_stored(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await append(conn, "T-ok", 0, [event({"body": "C:\\u0000 and \\\\u0000"})])
        (stored,) = await read_stream(conn, "T-ok")
    assert stored.payload == {"body": "C:\\u0000 and \\\\u0000"}


async def test_the_largest_event_accepted_fits_in_a_record_of_our_topics(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    spec = TopicSpec(f"bounds-{uuid.uuid4().hex[:10]}", partitions=1)
    assert spec.config["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(spec.name, 1, 1, topic_configs=spec.config)])
    finally:
        await admin.close()
    largest = event(of_size(MAX_EVENT_BYTES - 60), {"correlationid": str(uuid.uuid4())})
    async with pool.acquire() as conn:
        (recorded,) = await append(conn, "T-largest", 0, [largest])
    key, value, headers = recorded.to_envelope("/desk/test").to_kafka()
    # a dead letter carries the same record with its error and origin headers
    headers += [("dlt_error", b"e" * 4096), ("dlt_topic", b"ticket-events")]
    producer = idempotent_producer(kafka_bootstrap, "bounds-test")
    await producer.start()
    try:
        sent = await producer.send_and_wait(spec.name, value, key=key, headers=headers)
    finally:
        await producer.stop()
    assert sent.offset == 0 and len(value) > MAX_EVENT_BYTES - 100
