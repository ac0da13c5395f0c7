"""The relay's pipeline against the real PostgreSQL and Kafka servers: it reads the next batch
while the broker acknowledges one, sends it only once that one is acknowledged, and moves its
checkpoint past acknowledged events only."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from kafka_support import consume_all

from desk_eventstore.records import NewEvent, RecordedEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import append, read_all

pytestmark = pytest.mark.integration


class GatedProducer:
    """The real producer, whose acknowledgements reach the relay only once `gate` is open."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def send(self, topic: str, value: bytes, **kwargs: Any) -> asyncio.Future[Any]:
        ack = await self.producer.send(topic, value, **kwargs)
        self.sent.append(dict(kwargs["headers"])["ce_id"].decode())

        async def acknowledged() -> Any:
            await self.gate.wait()
            return await ack

        return asyncio.ensure_future(acknowledged())


async def until(condition: Callable[[], bool], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.01)


async def test_the_next_batch_is_read_while_the_broker_acknowledges_one_and_sent_after_it(
    pool: asyncpg.Pool,
    database_url: str,
    schema: str,
    kafka_bootstrap: str,
    new_topic: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic = await new_topic("relay-pipeline")
    ids: list[str] = []
    async with pool.acquire() as conn:
        for version in range(10):
            for s in range(3):
                event = NewEvent(uuid.uuid4(), "Something", {"s": s, "v": version + 1})
                await append(conn, f"ticket-{s}", version, [event])
                ids.append(str(event.event_id))
    reads: list[int] = []

    async def reading(conn: asyncpg.Connection, position: int, limit: int) -> list[RecordedEvent]:
        reads.append(position)
        return await read_all(conn, position, limit)

    monkeypatch.setattr("desk_eventstore.relay.read_all", reading)
    real = idempotent_producer(kafka_bootstrap, "test")
    await real.start()
    producer = GatedProducer(real)
    gated: Any = producer  # for the AIOKafkaProducer: here the relay calls `send` only
    relay = OutboxRelay(database_url, schema, gated, lambda _: topic, source="/t", batch_size=10)

    async def checkpoint() -> int:
        return int(await pool.fetchval("SELECT coalesce(max(position), 0) FROM relay_checkpoints"))

    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await until(lambda: len(reads) >= 2)
        await asyncio.sleep(0.3)  # time enough to send more, were it allowed to
        first = await pool.fetchval(
            "SELECT global_position FROM events WHERE event_id = $1", ids[9]
        )
        assert reads == [0, first]  # the second batch was read while the first waited
        assert producer.sent == ids[:10]  # and not sent
        assert await checkpoint() == 0  # nothing acknowledged: the checkpoint stays
        producer.gate.set()
        last = await pool.fetchval("SELECT max(global_position) FROM events")
        await until(lambda: relay.published == 30)
        assert await checkpoint() == last
        records = await consume_all(kafka_bootstrap, topic, 30)
    finally:
        stop.set()
        producer.gate.set()
        await task
        await real.stop()
    assert producer.sent == ids
    assert sorted(dict(r.headers)["ce_id"].decode() for r in records) == sorted(ids)
    versions: dict[bytes, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        versions[record.key].append(int(dict(record.headers)["ce_streamversion"]))
    assert all(v == list(range(1, 11)) for v in versions.values())
