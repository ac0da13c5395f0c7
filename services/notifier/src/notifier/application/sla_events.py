"""SLA warnings and breaches (`sla-events`, published by sla) become internal mail, per the desk
policy's `notifications` rules, addressed and worded from the request's latest published state
that the notifier keeps (`application.request_states`).

An `sla-events` record carries no request state, and the notifier reads `ticket-events` with
another consumer: a warning can come before the state of the version its timer was armed at (the
notifier's ticket-events consumer is behind, after a restart say). Such a warning is neither
lost nor retried in place (that would hold up the partition): it is set aside in the notifier's
store (`sla_events_waiting`), with the reason, and the consumer goes on. The request's later
SLA events queue behind it, so a request's warnings and breaches are told in their order.
`release_waiting` records the ones whose state has come since, in their order; it runs after
each batch of either topic and every few seconds. One that cannot be recorded (an unknown
desk, a bug) is marked `failed` with its error, and those of its request wait behind it; the
others go on. A warning that would be told at or after the breach it announces is dropped (as
sla drops a warning deferred past the breach): the breach says it all; so is any SLA event
that would be told more than `TELL_WITHIN` after sla published it (as a delivery is given up
after as long): a new notifier group reading the topic's history, or one back from a long outage,
does not mail the desk's past. Those set aside that grow as old are dropped too, with a log
line each (the failed ones stay, for an operator). Each message keeps the
delivery key of its event and recipient, so a warning told after waiting (or consumed twice) is
still sent once. The set-aside events are shown by the notifier's metrics
(`desk_notifier_sla_events_*`); `redrive list` does not list them (they are no dead letters).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from desk_contracts.base import Event, event_from_data
from desk_contracts.envelope import Envelope
from desk_contracts.sla import SlaBreached, SlaWarningReached
from desk_contracts.state import RequestState
from desk_eventstore.failures import describe, is_transient
from desk_eventstore.tracecontext import TRACEPARENT
from notifier.application.notify import Notifier, record_all_notifications

log = structlog.get_logger(__name__)

SlaEvent = SlaWarningReached | SlaBreached
SLA_SOURCE = "/desk/sla"  # the only service that publishes on `sla-events`
RELEASE_LOCK_CLASS = 7_301_005  # held by the one replica releasing waiting events at a time
RELEASE_BATCH = 200
TELL_WITHIN = timedelta(days=2)  # as the sender gives up a message (delivery.GIVE_UP_AFTER)


def outdated(event: Event, published_at: datetime, now: datetime) -> str | None:
    """Why `event`, published by sla at `published_at` and told at `now` (both real time),
    would come too late (None: it would not): any SLA event more than `TELL_WITHIN` after its
    publication, or a warning whose delay since reaches the breach it announces. The delay is
    measured in real time and added to the event's own instants, which are the request's time
    (a request on a test clock lives on another time than the notifier's)."""
    delay = now - published_at
    if delay > TELL_WITHIN:
        return f"published more than {TELL_WITHIN.days} days ago"
    if isinstance(event, SlaWarningReached) and event.occurred_at + delay >= event.breach_at:
        return "told after the breach it announces"
    return None


async def record_sla_event(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: SlaEvent,
    notifier: Notifier,
    now: datetime,
) -> bool:
    """Record the messages `event` causes, from the request's kept state; or, when that state
    is not there yet (or older than the timer's), or an earlier SLA event of the request still
    waits, set it aside. True when recorded now (one `outdated` at `now` is dropped). A
    KeyError names an unknown desk."""
    row = await conn.fetchrow(
        """SELECT s.version, s.state,
                  EXISTS (SELECT 1 FROM sla_events_waiting AS w WHERE w.ticket_id = $1) AS behind
           FROM (SELECT $1::text AS ticket_id) AS t
           LEFT JOIN request_states AS s ON s.ticket_id = t.ticket_id""",
        event.ticket_id,
    )
    if late := outdated(event, envelope.time, now):
        log.info("sla_event_dropped", event_type=event.event_type, reason=late)
        return False
    reason = waiting_reason(event, row["version"], row["behind"])
    if reason is None:
        ticket = RequestState.model_validate_json(row["state"])
        await record_all_notifications(conn, [(envelope, event, ticket)], notifier)
        return True
    await conn.execute(
        """INSERT INTO sla_events_waiting (event_id, ticket_id, armed_version, event_type,
                                           schema_version, payload, traceparent, reason,
                                           published_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING""",
        envelope.id,
        event.ticket_id,
        event.armed_version,
        event.event_type,
        event.schema_version,
        event.model_dump_json(),
        envelope.extensions.get(TRACEPARENT),
        reason,
        envelope.time,
    )
    log.info("sla_event_waiting_for_request", event_type=event.event_type, reason=reason)
    return False


def waiting_reason(event: SlaEvent, kept_version: int | None, behind: bool) -> str | None:
    """Why `event` cannot be told yet (None: it can), from the version of the request's kept
    state (None: none kept) and whether an earlier SLA event of the request still waits."""
    ticket = event.ticket_id
    if behind:
        return f"behind an earlier SLA event of request {ticket} that still waits"
    if kept_version is None:
        return f"request {ticket} not known yet (its state comes with its ticket events)"
    if kept_version < event.armed_version:
        return (
            f"request {ticket} known at version {kept_version}, "
            f"the timer was armed at version {event.armed_version}"
        )
    return None


async def release_waiting(
    pool: asyncpg.Pool,
    notifier: Notifier,
    now: datetime,
    recorded: Callable[[], None] | None = None,
) -> int:
    """Record the waiting SLA events whose request's state is kept now (at their timer's
    version or later), each request's in their order, and forget them (one `outdated` at
    `now` is forgotten untold, as are those set aside that grew too old to tell); returns how
    many were told or dropped; `recorded` is called when some were. One replica at a time
    does it (the others find the lock taken and do nothing)."""
    released = 0
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1, 0)", RELEASE_LOCK_CLASS):
            return 0
        expired = await conn.fetch(
            """DELETE FROM sla_events_waiting
               WHERE failed IS NULL AND published_at < $1
               RETURNING ticket_id, event_id, event_type, reason""",
            now - TELL_WITHIN,
        )
        for row in expired:
            log.warning(
                "sla_event_dropped",
                ticket_id=row["ticket_id"],
                event_id=row["event_id"],
                event_type=row["event_type"],
                reason=f"waited until too old to tell ({row['reason']})",
            )
        rows = await conn.fetch(
            """SELECT w.*, s.state FROM sla_events_waiting AS w
               JOIN request_states AS s ON s.ticket_id = w.ticket_id
               WHERE w.failed IS NULL AND s.version >= w.armed_version
                 AND NOT EXISTS (
                     SELECT 1 FROM sla_events_waiting AS e
                     WHERE e.ticket_id = w.ticket_id AND e.seq < w.seq
                       AND (e.failed IS NOT NULL OR e.armed_version > s.version))
               ORDER BY w.seq LIMIT $1""",
            RELEASE_BATCH,
        )
        stopped: set[str] = set()  # requests whose earlier event failed in this batch
        for row in rows:
            if row["ticket_id"] in stopped:
                continue
            await conn.execute("SAVEPOINT waiting")
            try:
                await _record_waiting(conn, row, notifier, now)
            except Exception as error:
                await conn.execute("ROLLBACK TO SAVEPOINT waiting")
                if is_transient(error):
                    raise
                stopped.add(row["ticket_id"])
                await conn.execute(
                    "UPDATE sla_events_waiting SET failed = $2 WHERE seq = $1",
                    row["seq"],
                    describe(error),
                )
                log.error(
                    "sla_event_not_recorded",
                    ticket_id=row["ticket_id"],
                    event_id=row["event_id"],
                    error=describe(error),
                )
                continue
            released += 1
    if released and recorded is not None:
        recorded()
    return released + len(expired)


async def waiting_now(pool: asyncpg.Pool) -> tuple[int, int, float]:
    """The SLA events set aside: how many, how many of them failed, and how many seconds the
    oldest has waited (0 when none)."""
    row = await pool.fetchrow(
        """SELECT count(*) AS waiting, count(failed) AS failed,
                  coalesce(extract(epoch FROM clock_timestamp() - min(since)), 0) AS oldest
           FROM sla_events_waiting"""
    )
    return int(row["waiting"]), int(row["failed"]), float(row["oldest"])


async def _record_waiting(
    conn: asyncpg.Connection, row: asyncpg.Record, notifier: Notifier, now: datetime
) -> None:
    """Record the messages of one waiting SLA event from its request's kept state (none for
    one `outdated` at `now`), and forget it (KeyError: its desk is unknown)."""
    event = event_from_data(row["event_type"], row["schema_version"], _json(row["payload"]))
    if late := outdated(event, row["published_at"], now):
        await conn.execute("DELETE FROM sla_events_waiting WHERE seq = $1", row["seq"])
        log.info(
            "sla_event_dropped",
            ticket_id=row["ticket_id"],
            event_id=row["event_id"],
            event_type=row["event_type"],
            reason=late,
        )
        return
    traceparent = row["traceparent"]
    envelope = Envelope(
        id=row["event_id"],
        type=row["event_type"],
        source=SLA_SOURCE,
        subject=row["ticket_id"],
        time=row["published_at"],
        data=_json(row["payload"]),
        schema_version=row["schema_version"],
        extensions={TRACEPARENT: traceparent} if traceparent else {},
    )
    ticket = RequestState.model_validate_json(row["state"])
    await record_all_notifications(conn, [(envelope, event, ticket)], notifier)
    await conn.execute("DELETE FROM sla_events_waiting WHERE seq = $1", row["seq"])
    log.info(
        "sla_event_released",
        ticket_id=row["ticket_id"],
        event_id=row["event_id"],
        waited_since=row["since"].isoformat(),
    )


def _json(payload: str) -> dict[str, Any]:
    """A JSON object kept as `jsonb` (read back as its text)."""
    data: dict[str, Any] = json.loads(payload)
    return data
