"""Kafka consumers wired with faststream: decode the CloudEvent, apply it once, ack after commit.

A handler runs inside one PostgreSQL transaction that also records the event id in the inbox;
the Kafka offset is committed only after that transaction commits (AckPolicy.NACK_ON_ERROR:
the ack follows a normal return). A record that can never be applied (malformed envelope,
unknown type, invalid payload, a handler bug) goes to the dead-letter topic with the reason and
the consumer carries on, parking the later events of the same ticket behind it (dead-lettered
too, until a re-drive) so a ticket is never applied out of order. Every dead letter is also
registered in the service's `dead_letters` table with its reason (what `redrive list` shows),
and resolved there when the event is applied after all. A transient failure (what
`desk_eventstore.failures` calls so: connection lost, server restarting, a conflict) is not
acknowledged, so the record is consumed again after `retry_delay` (a second: a consumer resumes
within about a second of the database's return).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError

from desk_contracts.base import Event, event_from_data
from desk_contracts.envelope import Envelope, MalformedEnvelope
from desk_contracts.inputs import quoted
from desk_contracts.state import MissingState, RequestState, state_of
from desk_eventstore.dead_letters import record_dead_letter
from desk_eventstore.failures import describe, is_transient
from desk_eventstore.inbox import first_time
from desk_eventstore.parking import park, parked_behind, release
from desk_eventstore.store import ConcurrencyError
from desk_platform.deadletter import DeadLetters
from desk_platform.edge import shorten
from desk_platform.logging import log_context

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope, Event], Awaitable[None]]


class PoisonMessage(Exception):
    """Raised by a handler for a record that can never be applied; the message says why."""


class RetryLater(Exception):
    """Raised by a handler for a record that cannot be applied yet (e.g. a command for a ticket
    whose creation has not arrived): it is consumed again after a backoff."""


def retry_later(error: BaseException) -> bool:
    """A record whose handling failed so is consumed again, after a pause (not dead-lettered):
    the handler asked for it, another writer came first, or the failure is transient."""
    return isinstance(error, RetryLater | ConcurrencyError) or is_transient(error)


def decode_event(envelope: Envelope) -> Event:
    try:
        return event_from_data(envelope.type, envelope.schema_version, dict(envelope.data))
    except ValidationError as error:
        raise PoisonMessage(f"invalid {envelope.type} payload: {error}") from error
    except ValueError as error:  # unknown type, or a version this code cannot read
        raise PoisonMessage(str(error)) from error


def published_state(envelope: Envelope, event: Event) -> RequestState:
    """The request's state published with `event` (a reader of `ticket-events` folds nothing);
    a record without a valid state, or with another ticket's, is a poison message."""
    try:
        state = state_of(envelope.request_state)
    except MissingState as error:
        raise PoisonMessage(str(error)) from None
    if state.ticket_id != event.ticket_id:
        raise PoisonMessage(
            f"the request state is of ticket {quoted(state.ticket_id)}, "
            f"the event of {quoted(event.ticket_id)}"
        )
    return state


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
        self.last_failure: str | None = None  # the last transient failure (the record waits)

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
            ticket = shorten(record.key.decode(errors="replace"), 500) if record.key else None
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
                    raise PoisonMessage(f"parked behind event {blocker} of the same ticket")
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
            except Exception as error:
                if retry_later(error):
                    await self._pause(error, "event_retry_later")
                    raise
                log.exception("event_handler_failed", event_type=envelope.type)
                await self._dead_letter(record, group_id, describe(error), envelope)

    async def _register(self, event_id: str, ticket: str | None, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await record_dead_letter(conn, self.consumer, event_id, ticket, reason)

    async def _park(self, ticket: str, event_id: str, reason: str) -> None:
        async with self.pool.acquire() as conn:
            await park(conn, self.consumer, ticket, event_id, reason)

    async def _pause(self, error: BaseException, what: str) -> None:
        self.last_failure = describe(error)
        log.warning(what, error=self.last_failure, retry_in_s=self.retry_delay)
        await asyncio.sleep(self.retry_delay)

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
        """Register the dead letter, send it to the dead-letter topic, then park the ticket:
        if the process dies in between, the record is consumed again and dead-lettered again
        (never lost; the register counts the times). A transient failure is not acknowledged
        (consumed again after a pause); a permanent one of a step is logged and the others are
        done all the same, so no record can hold the consumer back."""
        ticket = envelope.subject if envelope is not None else ticket
        event_id = envelope.id if envelope is not None else event_id
        reason = shorten(reason, 2000)  # as a table and a header can hold it (NUL escaped)
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("send", lambda: self.dead_letters.send(record, group_id, reason))
        ]
        if event_id:
            steps.insert(0, ("register", lambda: self._register(event_id, ticket, reason)))
            if ticket:
                steps.append(("park", lambda: self._park(ticket, event_id, reason)))
        for step, work in steps:
            try:
                await work()
            except Exception as error:
                if is_transient(error):
                    await self._pause(error, "dead_letter_failed")
                    raise
                log.error("dead_letter_step_failed", step=step, error=describe(error),
                          topic=record.topic, partition=record.partition,
                          offset=record.offset)  # fmt: skip
        self.dead_lettered += 1
