"""Kafka consumers wired with faststream: decode the CloudEvent, apply it once, ack after commit.

A handler runs inside one PostgreSQL transaction that also records the event id in the inbox;
the Kafka offset is committed only after that transaction commits (AckPolicy.NACK_ON_ERROR:
the ack follows a normal return). A record that can never be applied (malformed envelope,
unknown type, invalid payload, a handler bug) goes to the dead-letter topic with the reason and
the consumer carries on, parking the later events of the same ticket behind it (dead-lettered
too, until a re-drive) so a ticket is never applied out of order. A transient failure (database
unreachable) is not acknowledged, so the record is consumed again after a backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from desk_contracts.base import Event, event_from_data
from desk_contracts.envelope import Envelope, MalformedEnvelope
from desk_eventstore.inbox import first_time
from desk_eventstore.parking import park, parked_behind, release
from desk_eventstore.store import ConcurrencyError
from desk_platform.deadletter import DeadLetters
from desk_platform.logging import log_context

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope, Event], Awaitable[None]]


class PoisonMessage(Exception):
    """Raised by a handler for a record that can never be applied; the message says why."""


class RetryLater(Exception):
    """Raised by a handler for a record that cannot be applied yet (e.g. a command for a ticket
    whose creation has not arrived): it is consumed again after a backoff."""


TRANSIENT = (
    RetryLater,
    ConcurrencyError,  # another writer appended first: the next attempt reloads the stream
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.OperatorInterventionError,  # server shutting down, restarting, query cancelled
    asyncpg.InsufficientResourcesError,
    KafkaError,  # the dead-letter topic could not be written
)


def decode_event(envelope: Envelope) -> Event:
    try:
        return event_from_data(envelope.type, envelope.schema_version, dict(envelope.data))
    except ValidationError as error:
        raise PoisonMessage(f"invalid {envelope.type} payload: {error}") from error
    except ValueError as error:  # unknown type, or a version this code cannot read
        raise PoisonMessage(str(error)) from error


async def _raw_body(message: Any) -> Any:
    return message.body  # keep bytes: decoding is ours, so bad JSON reaches the handler


class EventConsumer:
    """One consumer group on one topic, applying each event once in a Postgres transaction."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dead_letters: DeadLetters,
        consumer: str,
        handle: Handler,
        *,
        retry_delay: float = 1.0,
    ) -> None:
        self.pool = pool
        self.dead_letters = dead_letters
        self.consumer = consumer
        self.handle = handle
        self.retry_delay = retry_delay
        self.applied = 0
        self.dead_lettered = 0

    def subscribe(self, broker: KafkaBroker, topic: str, group_id: str) -> None:
        @broker.subscriber(
            topic,
            group_id=group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=_raw_body,
        )
        async def on_record(message: KafkaMessage) -> None:
            await self.on_record(message.raw_message, group_id)

    async def on_record(self, record: Any, group_id: str) -> None:
        try:
            envelope = Envelope.from_kafka(record.key, record.value, record.headers)
        except MalformedEnvelope as error:
            # park its ticket (the record key) too: its later events must not overtake it
            ticket = record.key.decode(errors="replace") if record.key else None
            where = f"{record.topic}/{record.partition}@{record.offset}"
            await self._dead_letter(
                record, group_id, f"malformed envelope: {error}", ticket=ticket, event_id=where
            )
            return
        with log_context(
            ticket_id=envelope.subject,
            event_id=envelope.id,
            correlation_id=envelope.correlation_id,
        ):
            try:
                async with self.pool.acquire() as conn:
                    blocker = await parked_behind(conn, self.consumer, envelope.subject)
                if blocker is not None and blocker != envelope.id:
                    await self._dead_letter(
                        record,
                        group_id,
                        f"parked behind event {blocker} of the same ticket",
                        envelope,
                    )
                    return
                event = decode_event(envelope)
                async with self.pool.acquire() as conn, conn.transaction():
                    if blocker is not None:  # a re-driven event, first in line: release it
                        await release(conn, self.consumer, envelope.subject, envelope.id)
                    if not await first_time(conn, self.consumer, envelope.id, envelope.subject):
                        log.info("event_already_applied", event_type=envelope.type)
                        return
                    await self.handle(conn, envelope, event)
                self.applied += 1
            except PoisonMessage as error:
                await self._dead_letter(record, group_id, str(error), envelope)
            except TRANSIENT as error:
                log.warning(
                    "event_retry_later",
                    error=str(error) or type(error).__name__,
                    retry_in_s=self.retry_delay,
                )
                await asyncio.sleep(self.retry_delay)
                raise
            except Exception as error:
                log.exception("event_handler_failed", event_type=envelope.type)
                await self._dead_letter(
                    record, group_id, f"{type(error).__name__}: {error}", envelope
                )

    async def _dead_letter(
        self,
        record: Any,
        group_id: str,
        reason: str,
        envelope: Envelope | None = None,
        *,
        ticket: str | None = None,
        event_id: str | None = None,
    ) -> None:
        """Send to the dead-letter topic first, then park the ticket: if the process dies in
        between, the record is consumed again and dead-lettered again (never lost)."""
        ticket = envelope.subject if envelope is not None else ticket
        event_id = envelope.id if envelope is not None else event_id
        try:
            await self.dead_letters.send(record, group_id, reason)
            if ticket and event_id:
                async with self.pool.acquire() as conn:
                    await park(conn, self.consumer, ticket, event_id, reason)
        except TRANSIENT as error:  # not acknowledged: consumed again, after a pause
            log.warning("dead_letter_failed", error=str(error) or type(error).__name__)
            await asyncio.sleep(self.retry_delay)
            raise
        self.dead_lettered += 1
