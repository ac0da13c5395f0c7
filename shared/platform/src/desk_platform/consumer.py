"""Kafka consumers wired with faststream: decode the CloudEvent, apply it once, ack after commit.

A consumer takes what Kafka hands it in one go (a batch of up to `MAX_BATCH` records) and
applies a run of well-formed records in one PostgreSQL transaction: one inbox insert for the
run, each handler on the same connection behind a savepoint (or, for records the service can
apply as a set, `Together`, one savepoint and a few statements for the set), one commit; the
Kafka offsets are committed only after that transaction commits. A record that fails in the
run is treated as it would be alone: its work and inbox row are undone, those before it are
committed, it is dead-lettered (or consumed again), and the rest follow. A parked ticket's
events, and a record alone or malformed, take the one-by-one path: each in its own transaction,
as always.

A record that can never be applied (malformed envelope, unknown type, invalid payload, a handler
bug) goes to the dead-letter topic with the reason and the consumer carries on, parking the
later events of the same ticket behind it (dead-lettered too, until a re-drive) so a ticket is
never applied out of order. Every dead letter is also registered in the service's
`dead_letters` table with its reason (what `redrive list` shows), and resolved there when the
event is applied after all. A transient failure (what `desk_eventstore.failures` calls so:
connection lost, server restarting, a conflict) is not acknowledged: the offsets of the records
finished before it are committed, the partition is rewound to it, and it is consumed again after
`retry_delay` (a second: a consumer resumes within about a second of the database's return).
Each record is handled in a span continuing the trace its event was appended in
(`desk_platform.tracing.handling`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import structlog
from aiokafka import TopicPartition
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
from desk_eventstore.inbox import first_time, first_times, forget, resolve
from desk_eventstore.parking import park, parked_among, parked_behind, release
from desk_eventstore.store import ConcurrencyError
from desk_platform.deadletter import DeadLetters
from desk_platform.edge import shorten
from desk_platform.logging import log_context
from desk_platform.tracing import handling

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


@dataclass(frozen=True)
class Together:
    """Records a handler can also apply as one set, with a few statements for all of them:
    `takes(envelope, event)` says which may join a set; `apply(conn, records)` applies two or
    more new ones at once as the handler would one by one in their order, or raises (then its
    writes are undone and the records go one by one, each behind its savepoint: a record's
    failure stays its own). It runs in the consumer's log context: what it logs names its
    records itself."""

    takes: Callable[[Envelope, Event], bool]
    apply: Callable[[asyncpg.Connection, list[tuple[Envelope, Event]]], Awaitable[None]]


MAX_BATCH = 200  # records handed over by one poll: one transaction applies them
POLL_MS = 50  # how long a poll waits for records (and faststream pauses after an empty one)


class _ConsumeAgain(Exception):
    """A record must be consumed again (after the pause already taken): the batch stops there."""


async def _raw_batch(message: Any) -> Any:
    return message.body  # keep bytes: decoding is ours, so bad JSON reaches the handler


async def _batch_of_records(records: tuple[Any, ...], parse: Any) -> Any:
    """faststream's batch parser, without its decoding of every header as UTF-8 (a hostile
    header would fail the whole batch, for ever): the envelope checks the headers itself."""
    message = await parse(tuple(replace(record, headers=()) for record in records))
    message.raw_message = records
    return message


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
        max_batch: int = MAX_BATCH,
        applied: Callable[[], None] | None = None,
        together: Together | None = None,
    ) -> None:
        self.pool = pool
        self.together = together
        self.dead_letters = dead_letters
        self.consumer = consumer
        self.handle = handle
        self.retry_delay = retry_delay
        self.max_batch = max_batch
        self.told = applied  # after a batch that applied events, once committed
        self.applied = 0  # records applied (each once); the counts are read by /metrics
        self.duplicates = 0  # records found applied before, skipped
        self.dead_lettered = 0  # records dead-lettered, those held behind an earlier one included
        self.held = 0  # records dead-lettered because their ticket is parked behind another
        self.last_failure: str | None = None  # the last transient failure (the record waits)
        self.topic = ""  # once subscribed

    def subscribe(self, broker: KafkaBroker, topic: str, group_id: str) -> None:
        self.topic = topic

        @broker.subscriber(
            topic,
            group_id=group_id,
            auto_offset_reset="earliest",
            batch=True,
            max_records=self.max_batch,
            batch_timeout_ms=POLL_MS,
            ack_policy=AckPolicy.MANUAL,  # offsets are ours: committed up to what is finished
            parser=_batch_of_records,
            decoder=_raw_batch,
        )
        async def on_batch(message: KafkaMessage) -> None:
            await self.on_batch(message.raw_message, message.consumer, group_id)

    async def on_batch(self, records: tuple[Any, ...], kafka: Any, group_id: str) -> None:
        """Apply the records in order, commit the offsets of those finished (applied, found
        applied before, or dead-lettered) and rewind each partition to its first unfinished
        record (one to consume again, or any failure of ours): nothing is skipped."""
        finished, before = 0, self.applied
        try:
            finished = await self.apply(list(records), group_id)
        except Exception:  # a bug of ours, not of a record: rewind all and pause
            log.exception("event_batch_failed", records=len(records))
            await asyncio.sleep(self.retry_delay)
        await _settle(kafka, records, finished)
        if self.told is not None and self.applied > before:
            self.told()

    async def apply(self, records: list[Any], group_id: str) -> int:
        """Apply `records` in order; returns how many are finished (all but those from the first
        one to consume again). Runs of well-formed records are applied together."""
        decoded = [_decoded(record) for record in records]
        done = 0
        while done < len(records):
            run = _leading(decoded[done:])
            if len(run) < 2:  # alone, or malformed (the one by one path dead-letters it)
                if not await self._one_by_one(records[done : done + 1], group_id):
                    return done
                done += 1
                continue
            try:
                outcome = await self._apply_together(run)
            except Exception as error:  # the run's transaction failed as a whole
                if retry_later(error):
                    await self._pause(error, "event_retry_later")
                    return done
                outcome = len(run)  # a bug of ours: let the one by one path tell which record
            if isinstance(outcome, int):  # parked tickets (or a broken run): one by one
                if not await self._one_by_one(records[done : done + outcome], group_id):
                    return done
                done += outcome
                continue
            applied, failure = outcome
            done += applied
            if failure is not None:
                envelope = run[applied][0]
                with log_context(
                    ticket_id=envelope.subject,
                    event_id=envelope.id,
                    correlation_id=envelope.correlation_id,
                ):
                    try:
                        await self._failed(records[done], group_id, envelope, failure)
                    except _ConsumeAgain:
                        return done
                done += 1
        return done

    async def _one_by_one(self, records: list[Any], group_id: str) -> bool:
        """`on_record` for each; False when one must be consumed again (the rest wait)."""
        for record in records:
            try:
                await self.on_record(record, group_id)
            except _ConsumeAgain:
                return False
        return True

    async def _apply_together(
        self, run: list[tuple[Envelope, Event]]
    ) -> tuple[int, Exception | None] | int:
        """The run, up to its first event of a parked ticket, in one transaction, each handler
        behind a savepoint. Returns how many were applied (committed) and, when the run stopped
        early, the failure of the next one (its work and inbox row undone, the ones before it
        kept); or, when the run starts with a parked ticket's events, how many of them the one
        by one path must take (it knows what to release and what to hold)."""
        async with self.pool.acquire() as conn, conn.transaction():
            parked = await parked_among(conn, self.consumer, sorted({e.subject for e, _ in run}))
            held = [n for n, (e, _) in enumerate(run) if e.subject in parked]
            if held[:1] == [0]:  # leading events of parked tickets
                return next((n for n, m in enumerate(held) if n != m), len(held))
            run = run[: held[0]] if held else run
            inserted = await first_times(conn, self.consumer, [(e.id, e.subject) for e, _ in run])
            fresh, handled, failure, applied = set(inserted), 0, None, 0
            while applied < len(run) and failure is None:
                chunk = self._set_at(run, applied, fresh)
                if len(chunk) > 1 and await self._apply_set(conn, chunk):
                    fresh.difference_update(e.id for e, _ in chunk)
                    handled += len(chunk)
                    applied += len(chunk)
                    continue
                for envelope, event in chunk or run[applied : applied + 1]:
                    new = envelope.id in fresh
                    failure = await self._apply_one(conn, envelope, event, fresh)
                    if failure is not None:
                        break
                    handled += new
                    applied += 1
            kept = [e.id for e, _ in run[:applied]]
            await forget(conn, self.consumer, sorted(inserted - set(kept)))
            await resolve(conn, self.consumer, kept)
        self.applied += handled
        return applied, failure

    def _set_at(
        self, run: list[tuple[Envelope, Event]], start: int, fresh: set[str]
    ) -> list[tuple[Envelope, Event]]:
        """The records from `start` on that may be applied as one set: new ones (each once)
        that the handler's `together` takes, up to the first that is not."""
        chunk: list[tuple[Envelope, Event]] = []
        if self.together is None:
            return chunk
        ids = set()
        for envelope, event in run[start:]:
            if envelope.id not in fresh or envelope.id in ids:
                break
            if not self.together.takes(envelope, event):
                break
            ids.add(envelope.id)
            chunk.append((envelope, event))
        return chunk

    async def _apply_set(
        self, conn: asyncpg.Connection, chunk: list[tuple[Envelope, Event]]
    ) -> bool:
        """Apply `chunk` as one set behind one savepoint; False (its writes undone) when the
        set could not be applied: its records then go one by one."""
        assert self.together is not None
        await conn.execute("SAVEPOINT records")
        try:
            with handling(self.topic, self.consumer, [e.extensions for e, _ in chunk]):
                await self.together.apply(conn, chunk)
        except Exception as error:
            await conn.execute("ROLLBACK TO SAVEPOINT records")  # should this fail, all does
            log.info("event_set_one_by_one", records=len(chunk), error=describe(error))
            return False
        return True

    async def _apply_one(
        self, conn: asyncpg.Connection, envelope: Envelope, event: Event, fresh: set[str]
    ) -> Exception | None:
        """Handle one record of a run behind its savepoint (unless applied before); its
        failure, if it failed (its work undone)."""
        with log_context(
            ticket_id=envelope.subject,
            event_id=envelope.id,
            correlation_id=envelope.correlation_id,
        ):
            if envelope.id not in fresh:
                log.info("event_already_applied", event_type=envelope.type)
                self.duplicates += 1
                return None
            fresh.discard(envelope.id)
            await conn.execute("SAVEPOINT record")
            try:
                with handling(self.topic, self.consumer, [envelope.extensions]):
                    await self.handle(conn, envelope, event)
            except Exception as error:
                await conn.execute("ROLLBACK TO SAVEPOINT record")
                return error
            return None

    async def on_record(self, record: Any, group_id: str) -> None:
        """Apply one record in its own transaction, or dead-letter it; raises `_ConsumeAgain`
        (after a pause) when it must be consumed again."""
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
        with (
            log_context(
                ticket_id=envelope.subject,
                event_id=envelope.id,
                correlation_id=envelope.correlation_id,
            ),
            handling(self.topic, self.consumer, [envelope.extensions]),
        ):
            try:
                async with self.pool.acquire() as conn:
                    blocker = await parked_behind(conn, self.consumer, envelope.subject)
                if blocker is not None and blocker != envelope.id:
                    self.held += 1
                    raise PoisonMessage(f"parked behind event {blocker} of the same ticket")
                event = decode_event(envelope)
                async with self.pool.acquire() as conn, conn.transaction():
                    if blocker is not None:  # a re-driven event, first in line: release it
                        await release(conn, self.consumer, envelope.subject, envelope.id)
                    if not await first_time(conn, self.consumer, envelope.id, envelope.subject):
                        log.info("event_already_applied", event_type=envelope.type)
                        self.duplicates += 1
                        return
                    await self.handle(conn, envelope, event)
                self.applied += 1
            except Exception as error:
                await self._failed(record, group_id, envelope, error)

    async def _failed(
        self, record: Any, group_id: str, envelope: Envelope, error: Exception
    ) -> None:
        """What a record's failure calls for: a poison record or a handler's bug is
        dead-lettered; one to retry raises `_ConsumeAgain` after a pause."""
        if isinstance(error, PoisonMessage):
            await self._dead_letter(record, group_id, str(error), envelope)
        elif retry_later(error):
            await self._pause(error, "event_retry_later")
            raise _ConsumeAgain from error
        else:
            log.error("event_handler_failed", event_type=envelope.type, exc_info=error)
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
                    raise _ConsumeAgain from error
                log.error("dead_letter_step_failed", step=step, error=describe(error),
                          topic=record.topic, partition=record.partition,
                          offset=record.offset)  # fmt: skip
        self.dead_lettered += 1


def _decoded(record: Any) -> tuple[Envelope, Event] | None:
    """The record's envelope and event; None when it is malformed (the one by one path says
    why and dead-letters it)."""
    try:
        envelope = Envelope.from_kafka(record.key, record.value, record.headers)
        return envelope, decode_event(envelope)
    except (MalformedEnvelope, PoisonMessage):
        return None


def _leading(decoded: list[tuple[Envelope, Event] | None]) -> list[tuple[Envelope, Event]]:
    """The records up to the first malformed one."""
    run: list[tuple[Envelope, Event]] = []
    for item in decoded:
        if item is None:
            break
        run.append(item)
    return run


async def _settle(kafka: Any, records: tuple[Any, ...], finished: int) -> None:
    """Commit each partition's offset past its finished records; rewind each partition with
    unfinished records to the first of them (the next poll hands it over again)."""
    done: dict[TopicPartition, int] = {}
    again: dict[TopicPartition, int] = {}
    for n, record in enumerate(records):
        partition = TopicPartition(record.topic, record.partition)
        if n < finished:
            done[partition] = record.offset + 1
        else:
            again.setdefault(partition, record.offset)
    for partition, offset in again.items():
        try:
            kafka.seek(partition, offset)
        except Exception as error:  # no longer ours (a rebalance): its owner starts from the commit
            log.warning("offset_rewind_failed", partition=str(partition), error=describe(error))
    if done:
        try:
            await kafka.commit(done)
        except Exception as error:  # a rebalance, say: the next owner applies them again (once)
            log.warning("offset_commit_failed", error=describe(error))
