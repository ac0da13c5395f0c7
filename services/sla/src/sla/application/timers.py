"""Arm a ticket's timers from its history (the pure calculator decides), and fire due ones.

Arming replaces the ticket's pending timers after every event. Firing takes due timers with
`FOR UPDATE SKIP LOCKED`, so any number of replicas share the work, and appends what each
timer means to the sla store (the outbox): SLA warnings and breaches for `sla-events`,
reminder and auto-close commands for `ticket-commands`. The event id is the timer's
deterministic command id, so a timer fired twice appends once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from desk_contracts.base import Event, event_from_data
from desk_contracts.envelope import Envelope
from desk_contracts.sla import AutoCloseDue, ReminderDue, SlaBreached, SlaWarningReached
from desk_contracts.tickets import TicketCreated
from desk_eventstore.records import NewEvent
from desk_eventstore.store import DuplicateEvent, append
from desk_policies.calendars import BusinessCalendar
from desk_policies.model import DeskPolicy
from sla.domain.business_time import BusinessTime
from sla.domain.clocks import ClockKind, ClockState, TicketClocks, read_clocks
from sla.domain.timers import Timer, TimerKind, plan_timers

log = structlog.get_logger(__name__)
RETRY_FAILED_TIMER = timedelta(minutes=1)


@dataclass
class Desks:
    """Policies and their calendars' arithmetic, loaded once at start."""

    policies: dict[str, DeskPolicy]
    calendars: dict[str, BusinessCalendar]

    def __post_init__(self) -> None:
        self.business_time = {cid: BusinessTime(cal) for cid, cal in self.calendars.items()}

    def of(self, policy_id: str) -> tuple[DeskPolicy, BusinessTime]:
        policy = self.policies[policy_id]
        return policy, self.business_time[policy.sla.calendar]


# What sla keeps of an event's texts: the clocks read statuses, roles, priorities, flags and
# times, never a comment's body or a description, so a longer text is cut. A ticket's history
# then stays small (a read of its clocks too) whatever its comments hold.
KEPT_TEXT = 500


def lean(value: Any) -> Any:
    """`value` (an event's data) with every text cut to `KEPT_TEXT` characters."""
    if isinstance(value, str):
        return value[:KEPT_TEXT]
    if isinstance(value, dict):
        return {key: lean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lean(item) for item in value]
    return value


async def record(conn: asyncpg.Connection, envelope: Envelope, version: int) -> None:
    """Keep the ticket's event at `version` in its history, its texts cut (see `lean`)."""
    await conn.execute(
        """INSERT INTO histories (ticket_id, version, event_id, event_type, schema_version,
                                  payload)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        envelope.subject,
        version,
        envelope.id,
        envelope.type,
        envelope.schema_version,
        json.dumps(lean(dict(envelope.data))),
    )


async def history(conn: asyncpg.Connection, ticket_id: str) -> list[Event]:
    rows = await conn.fetch(
        """SELECT version, event_type, schema_version, payload FROM histories
           WHERE ticket_id = $1 ORDER BY version""",
        ticket_id,
    )
    events = []
    for expected, row in enumerate(rows, start=1):
        if row["version"] != expected:  # a gap: wait for the missing event before computing
            log.warning("history_gap", ticket_id=ticket_id, missing=expected)
            return []
        events.append(
            event_from_data(row["event_type"], row["schema_version"], json.loads(row["payload"]))
        )
    return events


async def arm(
    conn: asyncpg.Connection, desks: Desks, ticket_id: str, now: datetime
) -> Sequence[Timer]:
    events = await history(conn, ticket_id)
    if not events or not isinstance(events[0], TicketCreated):
        return ()
    policy, calendar = desks.of(events[0].policy_id)
    fired = {
        row["occurrence"]
        for row in await conn.fetch(
            "SELECT occurrence FROM fired_occurrences WHERE ticket_id = $1", ticket_id
        )
    }
    clocks = read_clocks(events, policy, calendar, now)
    timers = plan_timers(events, policy, calendar, now, fired=fired, clocks=clocks)
    await _board(conn, events[0], clocks)
    await conn.execute("DELETE FROM timers WHERE ticket_id = $1 AND fired_at IS NULL", ticket_id)
    await conn.executemany(
        """INSERT INTO timers (timer_id, ticket_id, kind, occurrence, fire_at, armed_version,
                               clock, days_waiting)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (timer_id) DO NOTHING""",
        [
            (
                t.command_id,
                t.ticket_id,
                t.kind.value,
                t.occurrence,
                t.fire_at,
                t.armed_version,
                t.clock,
                t.days_waiting,
            )
            for t in timers
        ],
    )
    log.info(
        "timers_armed",
        ticket_id=ticket_id,
        version=len(events),
        timers=[f"{t.kind.value}@{t.fire_at.isoformat()}" for t in timers],
    )
    return timers


async def _board(conn: asyncpg.Connection, created: TicketCreated, clocks: TicketClocks) -> None:
    """Keep the board row of the ticket (whose request it is, and its clocks) in step."""
    response, resolution = clocks.response, clocks.resolution
    running = [
        c.due_at
        for c in (response, resolution)
        if c is not None and c.due_at is not None and c.state == ClockState.RUNNING
    ]
    await conn.execute(
        """INSERT INTO clock_board (ticket_id, key, policy_id, priority, status, response_state,
               response_due, response_reason, resolution_state, resolution_due,
               resolution_reason, next_due, version, organisation_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (ticket_id) DO UPDATE SET priority = $4, status = $5,
               response_state = $6, response_due = $7, response_reason = $8,
               resolution_state = $9, resolution_due = $10, resolution_reason = $11,
               next_due = $12, version = $13, organisation_id = $14""",
        created.ticket_id,
        created.key,
        created.policy_id,
        clocks.priority,
        clocks.status,
        response.state.value if response else None,
        response.due_at if response else None,
        response.reason if response else None,
        resolution.state.value if resolution else None,
        resolution.due_at if resolution else None,
        resolution.reason if resolution else None,
        min(running) if running else None,
        clocks.version,
        created.organisation_id,
    )


async def clocks_of(
    conn: asyncpg.Connection, desks: Desks, ticket_id: str, now: datetime
) -> TicketClocks | None:
    events = await history(conn, ticket_id)
    if not events or not isinstance(events[0], TicketCreated):
        return None
    policy, calendar = desks.of(events[0].policy_id)
    return read_clocks(events, policy, calendar, now)


async def fire_due(pool: asyncpg.Pool, desks: Desks, now: datetime, limit: int = 100) -> int:
    """Handle timers due at `now`; returns how many were handled (fired, found stale, or put
    back for later), so a caller looping until 0 always ends."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT * FROM timers WHERE fired_at IS NULL AND fire_at <= $1
               ORDER BY fire_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        for row in rows:
            try:
                async with conn.transaction():  # one timer's failure does not undo the others
                    await _fire(conn, desks, row, now)
            except Exception:
                log.exception("timer_failed", ticket_id=row["ticket_id"], kind=row["kind"])
                await conn.execute(
                    "UPDATE timers SET fire_at = $2 WHERE timer_id = $1",
                    row["timer_id"],
                    now + RETRY_FAILED_TIMER,
                )
        return len(rows)


async def _fire(conn: asyncpg.Connection, desks: Desks, row: asyncpg.Record, now: datetime) -> None:
    ticket_id = row["ticket_id"]
    kind = TimerKind(row["kind"])
    event = await _event_for(conn, desks, row, kind, now)
    if event is None:  # the clock moved on since arming: a re-arm will follow its new state
        await _done(conn, row, now)
        log.info("timer_stale", ticket_id=ticket_id, kind=kind.value)
        return
    first = await conn.fetchval(
        "INSERT INTO fired_occurrences VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        ticket_id,
        row["occurrence"],
    )
    await _done(conn, row, now)
    if first is None:  # re-armed under a new version but already fired: once is enough
        log.info("timer_already_fired", ticket_id=ticket_id, occurrence=row["occurrence"])
        return
    new = NewEvent.from_event(
        event, event_id=row["timer_id"], metadata={"correlationid": ticket_id}
    )
    try:
        async with conn.transaction():  # savepoint: a duplicate must not undo the marks above
            await append(conn, ticket_id, None, [new], bounded=False)
    except DuplicateEvent:
        log.info("timer_already_fired", ticket_id=ticket_id, timer=str(row["timer_id"]))
        return
    log.info(
        "timer_fired",
        ticket_id=ticket_id,
        event_id=str(row["timer_id"]),
        kind=kind.value,
        event_type=event.event_type,
    )


async def _done(conn: asyncpg.Connection, row: asyncpg.Record, now: datetime) -> None:
    await conn.execute("UPDATE timers SET fired_at = $2 WHERE timer_id = $1", row["timer_id"], now)


async def _event_for(
    conn: asyncpg.Connection, desks: Desks, row: asyncpg.Record, kind: TimerKind, now: datetime
) -> Event | None:
    """What the timer means now; None when its clock no longer says so (stale timer)."""
    common = {
        "ticket_id": row["ticket_id"],
        "occurred_at": now,
        "armed_version": row["armed_version"],
        "due_at": row["fire_at"],
    }
    if kind is TimerKind.REMINDER:
        return ReminderDue(**common, days_waiting=row["days_waiting"] or 0)
    if kind is TimerKind.AUTO_CLOSE:
        return AutoCloseDue(**common)  # workflow checks it is not stale (armed version)
    clocks = await clocks_of(conn, desks, row["ticket_id"], now)
    if clocks is None:
        return None
    reading = clocks.response if row["clock"] == ClockKind.RESPONSE else clocks.resolution
    if reading is None:
        return None
    if kind is TimerKind.SLA_BREACH:  # breached, even if it paused or stopped since
        return (
            SlaBreached(**common, clock=row["clock"], priority=clocks.priority)
            if (reading.breached)
            else None
        )
    running = reading.state is ClockState.RUNNING and reading.due_at is not None
    if not running or reading.breached or reading.warning_at is None or reading.warning_at > now:
        return None
    assert reading.due_at is not None
    return SlaWarningReached(
        **common, clock=row["clock"], priority=clocks.priority, breach_at=reading.due_at
    )
