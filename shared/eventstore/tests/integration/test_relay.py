"""The outbox relay against the real PostgreSQL and Kafka servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import asyncpg
import pytest
from kafka_support import consume_all

from desk_eventstore.records import NewEvent
from desk_eventstore.relay import OutboxRelay, idempotent_producer
from desk_eventstore.store import append

pytestmark = pytest.mark.integration


async def fill(pool: asyncpg.Pool, streams: int, per_stream: int, chunk: int = 1) -> list[str]:
    ids: list[str] = []
    async with pool.acquire() as conn:
        for version in range(0, per_stream, chunk):
            for s in range(streams):
                events = [
                    NewEvent(uuid.uuid4(), "Something", {"s": s, "v": version + i + 1})
                    for i in range(chunk)
                ]
                await append(conn, f"ticket-{s}", version, events)
                ids.extend(str(event.event_id) for event in events)
    return ids


async def checkpoint(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT coalesce(max(position), 0) FROM relay_checkpoints"))


async def test_relay_publishes_in_stream_order_keyed_by_stream(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("relay")
    ids = await fill(pool, streams=5, per_stream=20)
    producer = idempotent_producer(kafka_bootstrap, "test")
    await producer.start()
    stop = asyncio.Event()
    relay = OutboxRelay(database_url, schema, producer, lambda _: topic, source="/t", batch_size=30)
    task = asyncio.create_task(relay.run(stop))
    try:
        records = await consume_all(kafka_bootstrap, topic, len(ids))
    finally:
        stop.set()
        await task
        await producer.stop()
    assert sorted(dict(r.headers)["ce_id"].decode() for r in records) == sorted(ids)
    versions: dict[bytes, list[int]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        versions[record.key].append(int(dict(record.headers)["ce_streamversion"]))
    assert all(v == sorted(v) for v in versions.values())
    assert set(versions) == {f"ticket-{s}".encode() for s in range(5)}


async def test_relay_killed_mid_batch_loses_nothing_after_restart(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("relay-kill")
    ids = await fill(pool, streams=20, per_stream=1000, chunk=100)  # 20,000 events
    script = Path(__file__).with_name("relay_process.py")
    argv = [sys.executable, str(script), database_url, schema, kafka_bootstrap, topic]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    first = subprocess.Popen(argv, env=env)
    try:
        # kill as soon as some, not all, batches are acknowledged; the process may take
        # seconds to start on a busy machine, so wait for its first checkpoint, not a fixed time
        deadline = time.monotonic() + 60
        while (position := await checkpoint(pool)) == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        with contextlib.suppress(ProcessLookupError):
            first.kill()
    assert 0 < position < len(ids), f"kill landed outside the run (checkpoint {position})"

    second = subprocess.Popen(argv, env=env)
    try:
        records = await consume_all(kafka_bootstrap, topic, len(ids), timeout=60)
    finally:
        second.terminate()
        second.wait()
    published = [dict(r.headers)["ce_id"].decode() for r in records]
    assert set(published) == set(ids)  # nothing lost; a re-sent batch shows as duplicates only


async def test_one_active_relay_per_store_and_a_standby_takes_over(
    pool: asyncpg.Pool, database_url: str, schema: str, kafka_bootstrap: str, new_topic
) -> None:
    topic = await new_topic("relay-standby")
    producer = idempotent_producer(kafka_bootstrap, "test")
    await producer.start()
    stops = [asyncio.Event(), asyncio.Event()]
    relays = [
        OutboxRelay(
            database_url, schema, producer, lambda _: topic, source="/t", standby_interval=0.2
        )
        for _ in stops
    ]
    tasks = [asyncio.create_task(r.run(s)) for r, s in zip(relays, stops, strict=True)]
    try:
        await asyncio.sleep(1.0)
        assert sorted(r.is_leader for r in relays) == [False, True]
        leader = 0 if relays[0].is_leader else 1
        stops[leader].set()
        await tasks[leader]
        ids = await fill(pool, streams=2, per_stream=5)
        records = await consume_all(kafka_bootstrap, topic, len(ids))
        assert relays[1 - leader].is_leader
        assert {dict(r.headers)["ce_id"].decode() for r in records} == set(ids)
    finally:
        for s in stops:
            s.set()
        await asyncio.gather(*tasks)
        await producer.stop()
