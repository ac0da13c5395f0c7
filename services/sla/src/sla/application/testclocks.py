"""Test clocks as sla keeps and moves them (`desk_contracts.testclocks`).

A clock is created at an instant for a desk (`create_clock`) and only advanced forward
(`advance`): that marks it `advancing` towards its target and returns at once; the timer loop
then moves it (`step_clocks`), one step a pass, in a transaction that holds the clock:

1. while a command fired at the previous step waits to be acted on (the request's state past
   the version it was armed at: `arm_all` clears the wait as the state arrives), nothing moves, so a
   step's consequences (a reminder sent, a request closed, timers armed again) are in place
   before the next; a wait ends anyway after `WAIT_SECONDS` of real time (a command workflow
   found stale changes nothing);
2. the next pending timer of the clock's requests due by the target sets the clock's instant,
   and every timer due at that instant is fired at it, as the real loop fires them
   (`fire_clock_due`): reminders, automatic closing, warnings, breaches, in their order;
3. once none is left before the target, the clock is there, and `ready` again.

Every change of a clock is appended to sla's store as `TestClockChanged`, for `test-clocks`:
the other services read a request's "now" from it (`desk_platform.testclocks`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

import asyncpg
import structlog

from desk_contracts.testclocks import Attachment, TestClockChanged, clock_stream
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append
from sla.application.timers import FIRE_BATCH, Desks, fire_taken

log = structlog.get_logger(__name__)

WAIT_SECONDS = 10.0  # the longest a step waits for the commands it fired to be acted on
WAITED_KINDS = ("reminder", "auto_close")  # timers whose command changes the request


class ClockRefused(ValueError):
    """A clock cannot be created or advanced so (the reason says why); `conflict`: it exists,
    or is advancing already."""

    def __init__(self, reason: str, *, conflict: bool = False) -> None:
        super().__init__(reason)
        self.conflict = conflict


def _change(row: Mapping[str, object], occurred_at: datetime) -> TestClockChanged:
    return TestClockChanged.model_validate(
        {
            "clock_id": row["clock_id"],
            "desk": row["desk"],
            "attached_to": row["attached_to"],
            "name": row["name"],
            "now": row["now"],
            "status": row["status"],
            "advancing_to": row["advancing_to"],
            "occurred_at": occurred_at,
        }
    )


async def _publish(conn: asyncpg.Connection, change: TestClockChanged) -> None:
    """Append the clock's new state to sla's store (the outbox of `test-clocks`)."""
    event = NewEvent(
        event_id=uuid.uuid4(),
        event_type=change.event_type,
        payload=change.model_dump(mode="json"),
        schema_version=change.schema_version,
        metadata={"correlationid": clock_stream(change.clock_id)},
    )
    await append(conn, clock_stream(change.clock_id), None, [event], bounded=False)


async def clock_of(conn: asyncpg.Connection, clock_id: str) -> TestClockChanged | None:
    """The clock as it now is; None when there is none of that id."""
    row = await conn.fetchrow("SELECT * FROM test_clocks WHERE clock_id = $1", clock_id)
    return None if row is None else _change(row, row["created_at"])


async def create_clock(
    pool: asyncpg.Pool,
    clock_id: str,
    *,
    desk: str,
    at: datetime,
    attached_to: Attachment,
    name: str,
    by: str,
    now: datetime,
) -> TestClockChanged:
    """A new clock of `desk` frozen at `at`; ClockRefused (conflict) when the id is taken, or
    when another clock is attached to the whole desk already."""
    async with pool.acquire() as conn, conn.transaction():
        if attached_to == "desk":
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"test-clock:{desk}")
            other = await conn.fetchval(
                "SELECT clock_id FROM test_clocks WHERE desk = $1 AND attached_to = 'desk'", desk
            )
            if other is not None:
                raise ClockRefused(
                    f"the clock {other!r} is attached to {desk} already", conflict=True
                )
        row = await conn.fetchrow(
            """INSERT INTO test_clocks (clock_id, desk, attached_to, name, now, status,
                                        created_by, created_at)
               VALUES ($1, $2, $3, $4, $5, 'ready', $6, $7)
               ON CONFLICT (clock_id) DO NOTHING RETURNING *""",
            clock_id,
            desk,
            attached_to,
            name,
            at,
            by,
            now,
        )
        if row is None:
            raise ClockRefused(f"a test clock {clock_id!r} exists already", conflict=True)
        change = _change(row, now)
        await _publish(conn, change)
    log.info("test_clock_created", test_clock=clock_id, desk=desk, at=at.isoformat())
    return change


async def advance(
    pool: asyncpg.Pool, clock_id: str, to: datetime, now: datetime
) -> TestClockChanged | None:
    """Start moving the clock to `to` (it is `advancing` until there); None when there is no
    such clock, ClockRefused when `to` is not after its instant (forward only) or it is
    advancing already (conflict)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT * FROM test_clocks WHERE clock_id = $1 FOR UPDATE", clock_id
        )
        if row is None:
            return None
        if row["status"] == "advancing":
            raise ClockRefused(
                f"the clock is advancing to {row['advancing_to'].isoformat()} already: "
                "wait until it is ready",
                conflict=True,
            )
        if to <= row["now"]:
            raise ClockRefused(
                f"a test clock only moves forward: {to.isoformat()} is not after its instant "
                f"{row['now'].isoformat()}"
            )
        moved = await conn.fetchrow(
            """UPDATE test_clocks SET status = 'advancing', advancing_to = $2
               WHERE clock_id = $1 RETURNING *""",
            clock_id,
            to,
        )
        change = _change(moved, now)
        await _publish(conn, change)
    log.info("test_clock_advancing", test_clock=clock_id, to=to.isoformat())
    return change


async def step_clocks(pool: asyncpg.Pool, desks: Desks, now: datetime) -> int:
    """Move each advancing clock one step (see module), each in its own transaction, skipping
    those another replica holds; how many moved without waiting (so the loop goes on at once)."""
    async with pool.acquire() as conn:
        ids = [
            r["clock_id"]
            for r in await conn.fetch(
                "SELECT clock_id FROM test_clocks WHERE status = 'advancing' ORDER BY clock_id"
            )
        ]
    moved = 0
    for clock_id in ids:
        async with pool.acquire() as conn, conn.transaction():
            moved += await _step(conn, desks, clock_id, now)
    return moved


async def _step(conn: asyncpg.Connection, desks: Desks, clock_id: str, now: datetime) -> int:
    """One step of an advancing clock (see module), in the caller's transaction: 1 when it
    moved and need not wait, else 0."""
    row = await conn.fetchrow(
        """SELECT * FROM test_clocks WHERE clock_id = $1 AND status = 'advancing'
           FOR UPDATE SKIP LOCKED""",
        clock_id,
    )
    if row is None:
        return 0
    if await _waiting(conn, clock_id, now):
        return 0
    target: datetime = row["advancing_to"]
    due: datetime | None = await conn.fetchval(
        """SELECT min(fire_at) FROM timers
           WHERE test_clock = $1 AND fired_at IS NULL AND fire_at <= $2""",
        clock_id,
        target,
    )
    if due is None:  # nothing left on the way: there
        ready = await conn.fetchrow(
            """UPDATE test_clocks SET now = $2, status = 'ready', advancing_to = NULL
               WHERE clock_id = $1 RETURNING *""",
            clock_id,
            target,
        )
        await _publish(conn, _change(ready, now))
        log.info("test_clock_ready", test_clock=clock_id, now=target.isoformat())
        return 1
    instant = max(due, row["now"])
    if instant > row["now"]:
        moved = await conn.fetchrow(
            "UPDATE test_clocks SET now = $2 WHERE clock_id = $1 RETURNING *", clock_id, instant
        )
        await _publish(conn, _change(moved, now))
    waits = await conn.execute(
        """INSERT INTO test_clock_waits (clock_id, ticket_id, armed_version, until)
           SELECT DISTINCT $1, ticket_id, armed_version, $4::timestamptz FROM timers
           WHERE test_clock = $1 AND fired_at IS NULL AND fire_at <= $2
             AND kind = ANY($3::text[])
           ON CONFLICT DO NOTHING""",
        clock_id,
        instant,
        list(WAITED_KINDS),
        now + timedelta(seconds=WAIT_SECONDS),
    )
    fired = 0
    while True:
        taken, firings = await fire_taken(conn, desks, instant, FIRE_BATCH, test_clock=clock_id)
        fired += len(firings)
        if taken < FIRE_BATCH:
            break
    log.info("test_clock_step", test_clock=clock_id, now=instant.isoformat(), fired=fired)
    return 0 if waits != "INSERT 0 0" else 1


async def _waiting(conn: asyncpg.Connection, clock_id: str, now: datetime) -> bool:
    """Does the clock still wait for a command it fired to be acted on? Waits past their
    `until` are dropped (logged)."""
    expired = await conn.fetch(
        "DELETE FROM test_clock_waits WHERE clock_id = $1 AND until <= $2 RETURNING ticket_id",
        clock_id,
        now,
    )
    for wait in expired:
        log.warning("test_clock_wait_expired", test_clock=clock_id, ticket_id=wait["ticket_id"])
    left: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM test_clock_waits WHERE clock_id = $1)", clock_id
    )
    return left
