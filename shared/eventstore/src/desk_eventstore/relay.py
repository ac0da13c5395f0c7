"""Outbox relay: publishes a store's events to Kafka in global order, at least once.

One relay is active per store (a session advisory lock held on a dedicated connection; other
replicas stand by and take over when that connection dies). It sends a batch with the
idempotent producer keyed by stream id, waits for every acknowledgement, then moves its
checkpoint. A crash between acknowledgement and checkpoint re-sends that batch: consumers
deduplicate by event id. Events whose metadata says `"publish": false` (imported from another
service's stream) advance the checkpoint without being sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer

from desk_eventstore.records import RecordedEvent
from desk_eventstore.store import NOTIFY_CHANNEL, read_all

log = structlog.get_logger(__name__)

RELAY_LOCK_CLASS = 7_301_003


def idempotent_producer(bootstrap_servers: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_batch_size=256 * 1024,
    )


class OutboxRelay:
    def __init__(
        self,
        url: str,
        schema: str,
        producer: AIOKafkaProducer,
        topic_for: Callable[[RecordedEvent], str],
        *,
        source: str,
        name: str = "outbox",
        batch_size: int = 500,
        poll_interval: float = 1.0,
        standby_interval: float = 2.0,
    ) -> None:
        self.url = url
        self.schema = schema
        self.producer = producer
        self.topic_for = topic_for
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.standby_interval = standby_interval
        self.is_leader = False
        self.published = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by until this replica holds the relay lock, then publish until `stop`.

        Never gives up: a lost database or broker is logged and retried with backoff (the
        checkpoint makes the next leader, or the next attempt, resend what was not acked)."""
        delay = self.standby_interval
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self.url, server_settings={"search_path": self.schema})
                if await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, hashtext(current_schema() || $2))",
                    RELAY_LOCK_CLASS,
                    self.name,
                ):
                    self.is_leader = True
                    log.info("relay_leader", relay=self.name, schema=self.schema)
                    await self._lead(conn, stop)
                else:
                    await _wait(stop, self.standby_interval)
                delay = self.standby_interval
            except asyncio.CancelledError:
                raise
            except Exception as error:  # database or broker trouble: retry, never die
                log.warning(
                    "relay_interrupted",
                    relay=self.name,
                    retry_in_s=delay,
                    error=f"{type(error).__name__}: {error}",
                )
                await _wait(stop, delay)
                delay = min(delay * 2, 30.0)
            finally:
                self.is_leader = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

    async def _lead(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        wake = asyncio.Event()
        await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
        await conn.execute(
            "INSERT INTO relay_checkpoints (relay) VALUES ($1) ON CONFLICT DO NOTHING", self.name
        )
        while not stop.is_set():
            wake.clear()
            sent = await self.publish_batch(conn)
            if sent < self.batch_size:
                await _wait_any(stop, wake, self.poll_interval)

    async def publish_batch(self, conn: asyncpg.Connection) -> int:
        """Publish the next batch after the checkpoint; returns how many rows it covered."""
        checkpoint = await conn.fetchval(
            "SELECT position FROM relay_checkpoints WHERE relay = $1", self.name
        )
        batch = await read_all(conn, checkpoint or 0, self.batch_size)
        if not batch:
            return 0
        acks = []
        for event in batch:
            if event.metadata.get("publish") is False:
                continue
            key, value, headers = event.to_envelope(self.source).to_kafka()
            acks.append(
                await self.producer.send(self.topic_for(event), value, key=key, headers=headers)
            )
        await asyncio.gather(*acks)
        await conn.execute(
            "UPDATE relay_checkpoints SET position = $2, updated_at = now() WHERE relay = $1",
            self.name,
            batch[-1].global_position,
        )
        self.published += len(acks)
        log.debug(
            "relay_published", relay=self.name, count=len(acks), position=batch[-1].global_position
        )
        return len(batch)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
