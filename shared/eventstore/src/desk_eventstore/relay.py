"""Outbox relay: publishes a store's events to Kafka in global order, at least once.

One relay is active per store (a session advisory lock held on a dedicated connection; other
replicas stand by and take over when that connection dies). It sends a batch with the
idempotent producer keyed by stream id, waits for every acknowledgement, then moves its
checkpoint. A crash between acknowledgement and checkpoint re-sends that batch: consumers
deduplicate by event id. Each send continues the trace its event was appended in
(`desk_eventstore.tracecontext`).

No record stops the relay: one Kafka would refuse for good (larger than the topic's
max.message.bytes, read from the broker when `bootstrap_servers` is given, or than
`max_record_bytes`) is set aside before it is sent. Should the broker refuse one all the same (a
limit unknown or lowered), the relay learns that the topic takes less than that record and
retries the batch, setting it aside. When the idempotent producer is left unusable (a refused
batch, or a broker restart that lost its sequence numbers: OutOfOrderSequenceNumber), the relay
replaces it with a new one from `renew_producer` and resends from its checkpoint; without
`renew_producer` it ends, so that its process restarts with a new one. A record set aside is
registered in the store's `dead_letters` with the reason, sent to the topic's `.dlt` twin as a
record that fits (the original headers, `dlt_error`, `dlt_origin_relay`, `dlt_origin_topic`,
`dlt_original_bytes`, no value), logged as an error, and the checkpoint moves on. The later
events of its stream are set aside behind it the same way (whole, on the `.dlt` twin), so that
stream is never published out of order; the other streams go on. Any other failure (database or
broker unreachable, a timeout) is transient: the batch is retried, after a back-off capped at
`max_retry_delay`, so the relay resumes within about a second of the server's return.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from desk_contracts.topics import MAX_MESSAGE_BYTES, dead_letter
from desk_eventstore import tracecontext
from desk_eventstore.db import session_settings
from desk_eventstore.dead_letters import (
    ERROR,
    ORIGIN_RELAY,
    ORIGIN_TOPIC,
    ORIGINAL_BYTES,
    record_dead_letter,
    set_aside_streams,
)
from desk_eventstore.failures import describe, is_record_refused
from desk_eventstore.records import RecordedEvent
from desk_eventstore.store import NOTIFY_CHANNEL, read_all

log = structlog.get_logger(__name__)

RELAY_LOCK_CLASS = 7_301_003
_TOPIC_LIMIT = "max.message.bytes"
_BATCH_OVERHEAD = 512  # a record batch's header and the record's own framing, generously
# the largest record our topics take (their max.message.bytes) less that framing
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES - _BATCH_OVERHEAD


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
        max_retry_delay: float = 1.0,
        max_record_bytes: int = MAX_RECORD_BYTES,
        bootstrap_servers: str | None = None,
        renew_producer: Callable[[], Awaitable[AIOKafkaProducer]] | None = None,
    ) -> None:
        self.url = url
        self.renew_producer = renew_producer
        self.schema = schema
        self.producer = producer
        self.topic_for = topic_for
        self.source = source
        self.name = name
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.standby_interval = standby_interval
        self.max_retry_delay = max_retry_delay
        self.max_record_bytes = max_record_bytes
        self.bootstrap_servers = bootstrap_servers  # to read each topic's max.message.bytes
        self._limits: dict[str, int] = {}
        self.is_leader = False
        # the PostgreSQL backend of this relay's connection, while it has one: a reader of the
        # lock table tells this relay's lock from another replica's by it
        self.backend_pid: int | None = None
        self.published = 0
        self.set_aside = 0  # events set aside by this process (see the module)
        self._blocked: dict[str, str] | None = None  # stream id -> the event set aside first

    async def run(self, stop: asyncio.Event) -> None:
        """Stand by until this replica holds the relay lock, then publish until `stop`.

        Never gives up: a lost database or broker is logged and retried with backoff (the
        checkpoint makes the next leader, or the next attempt, resend what was not acked)."""
        delay = self.max_retry_delay / 4
        while not stop.is_set():
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self.url, server_settings=session_settings(self.schema), timeout=10
                )
                self.backend_pid = conn.get_server_pid()
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
                delay = self.max_retry_delay / 4
            except asyncio.CancelledError:
                raise
            except (kafka_errors.OutOfOrderSequenceNumber, kafka_errors.ProducerFenced) as error:
                # the idempotent producer is unusable (its sequence numbers are behind the
                # broker's): a new one resends from the checkpoint, or the process restarts
                log.error("relay_producer_unusable", relay=self.name, error=describe(error))
                if self.renew_producer is None:
                    raise
                with contextlib.suppress(Exception):
                    await self.producer.stop()
                self.producer = await self.renew_producer()
                log.info("relay_producer_renewed", relay=self.name)
            except Exception as error:  # database or broker trouble: retry, never die
                log.warning(
                    "relay_interrupted",
                    relay=self.name,
                    retry_in_s=delay,
                    error=describe(error),
                )
                await _wait(stop, delay)
                delay = min(delay * 2, self.max_retry_delay)
            finally:
                self.is_leader = False
                self._blocked = None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                self.backend_pid = None

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
        if self._blocked is None:
            self._blocked = await set_aside_streams(conn, self.name)
        sending = await self._send(conn, batch)
        results = await asyncio.gather(*(ack for ack, _, _ in sending), return_exceptions=True)
        if failures := [r for r in results if isinstance(r, BaseException)]:
            refused: dict[str, int] = {}  # topic -> its largest record refused
            for (_, topic, size), result in zip(sending, results, strict=True):
                if isinstance(result, BaseException) and is_record_refused(result):
                    refused[topic] = max(refused.get(topic, 0), size)
            for topic, size in refused.items():
                # the checks before sending missed it (the topic's limit unknown, or lowered):
                # the topic takes less than that record (the others in its producer batch were
                # refused with it, maybe for it), so the retry sets that one aside
                self._limits[topic] = min(await self._limit(topic), size - 1)
                log.error(
                    "relay_record_refused_by_broker",
                    relay=self.name,
                    topic=topic,
                    size=size,
                    error=describe(failures[0]),
                )
            raise failures[0]
        sent = len(sending)
        await conn.execute(
            "UPDATE relay_checkpoints SET position = $2, updated_at = now() WHERE relay = $1",
            self.name,
            batch[-1].global_position,
        )
        self.published += sent
        log.debug(
            "relay_published", relay=self.name, count=sent, position=batch[-1].global_position
        )
        return len(batch)

    async def _send(
        self, conn: asyncpg.Connection, batch: list[RecordedEvent]
    ) -> list[tuple[Any, str, int]]:
        """Send the batch's events, setting aside those Kafka would refuse and those behind
        them; returns the acknowledgements to wait for, with each record's topic and size."""
        assert self._blocked is not None
        acks: list[tuple[Any, str, int]] = []
        for event in batch:
            topic = self.topic_for(event)
            key, value, headers = event.to_kafka(self.source)
            blocker = self._blocked.get(event.stream_id)
            if blocker == str(event.event_id):
                continue  # set aside already, before a crash
            if blocker is not None:
                reason = f"set aside behind event {blocker} of the same stream"
                await self._set_aside(conn, event, topic, key, value, headers, reason)
                continue
            size = len(key or b"") + len(value) + sum(len(n) + len(v) for n, v in headers)
            if size > (limit := await self._limit(topic)):
                reason = f"record of {size} bytes, over the limit of {limit} bytes of {topic}"
                await self._set_aside(conn, event, topic, key, value, headers, reason)
                continue
            try:
                with tracecontext.continuing(event.metadata):  # the send joins its trace
                    # a copy: the sending instrumentation adds the trace to the list it is given
                    ack = await self.producer.send(topic, value, key=key, headers=list(headers))
                acks.append((ack, topic, size))
            except Exception as error:  # the producer's own size check (max_request_size)
                if not is_record_refused(error):
                    raise
                await self._set_aside(conn, event, topic, key, value, headers, describe(error))
        return acks

    async def _limit(self, topic: str) -> int:
        """The largest record `topic` takes: its max.message.bytes (read from the broker once)
        less room for the batch header, and never over `max_record_bytes`."""
        if topic not in self._limits:
            limit = self.max_record_bytes
            if self.bootstrap_servers is not None:
                admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
                await admin.start()
                try:
                    [response] = await admin.describe_configs(
                        [ConfigResource(ConfigResourceType.TOPIC, topic, {_TOPIC_LIMIT: None})]
                    )
                finally:
                    await admin.close()
                for error_code, _, _, _, entries in response.resources:
                    if error_code:
                        raise kafka_errors.for_code(error_code)(f"topic {topic}")
                    for name, value, *_ in entries:
                        if name == _TOPIC_LIMIT:
                            limit = min(limit, int(value) - _BATCH_OVERHEAD)
            self._limits[topic] = limit
        return self._limits[topic]

    async def _set_aside(
        self,
        conn: asyncpg.Connection,
        event: RecordedEvent,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]],
        reason: str,
    ) -> None:
        """Register the event as set aside, then put a record of it that fits on the `.dlt`
        twin: whole when it is only behind another one, without its value when refused."""
        assert self._blocked is not None
        event_id = str(event.event_id)
        await record_dead_letter(conn, self.name, event_id, event.stream_id, reason)
        self._blocked.setdefault(event.stream_id, event_id)
        behind = self._blocked[event.stream_id] != event_id
        extra = [
            (ORIGIN_RELAY, self.name.encode()),
            (ORIGIN_TOPIC, topic.encode()),
            (ERROR, reason.encode()),
        ]
        whole = (value, headers + extra)
        emptied = (b"", [*headers, *extra, (ORIGINAL_BYTES, str(len(value)).encode())])
        for dlt_value, dlt_headers in [whole, emptied] if behind else [emptied]:
            try:
                await self.producer.send_and_wait(
                    dead_letter(topic), dlt_value, key=key, headers=dlt_headers
                )
                break
            except Exception as error:
                if not is_record_refused(error) or dlt_value == b"":
                    raise
        self.set_aside += 1
        log.error(
            "relay_set_aside",
            relay=self.name,
            topic=topic,
            stream_id=event.stream_id,
            event_id=event_id,
            event_type=event.event_type,
            position=event.global_position,
            reason=reason,
        )


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
