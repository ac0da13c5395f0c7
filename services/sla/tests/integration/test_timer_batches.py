"""The sla service's timers fired in batches on the real PostgreSQL server: more than a batch
due at once is fired in one call, each timer once, even by two replicas at a time; a timer that
fails, in its batch or when the batch is written together, is put back for later and the others
fire once; a timer already appended fires nothing again; the loop rests until the next timer
falls due, not a whole tick."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from published import published_envelopes
from service_support import service_store
from structlog.testing import capture_logs

from desk_contracts.sla import ReminderDue
from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append
from desk_platform.consumer import decode_event
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks, fire_due
from sla.bootstrap import fire_timers
from sla.domain.timers import Timer, TimerKind

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 in Geneva, a business day


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "sla") as pool:
        yield pool


def reminder(fire_at: datetime, ticket_id: str | None = None) -> Timer:
    return Timer(
        ticket_id or str(uuid.uuid4()),
        TimerKind.REMINDER,
        fire_at,
        3,
        "reminder:10d:v2",
        days_waiting=10,
    )


async def arm(pool: asyncpg.Pool, timers: list[Timer]) -> None:
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO timers (timer_id, ticket_id, kind, occurrence, fire_at, armed_version,
                                   clock, days_waiting)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
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


async def appended(pool: asyncpg.Pool) -> dict[uuid.UUID, int]:
    """How many events each event id has."""
    async with pool.acquire() as conn:
        return dict(await conn.fetch("SELECT event_id, count(*) FROM events GROUP BY event_id"))


async def pending(pool: asyncpg.Pool) -> dict[uuid.UUID, datetime]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT timer_id, fire_at FROM timers WHERE fired_at IS NULL")
    return {row["timer_id"]: row["fire_at"] for row in rows}


def critical(ticket_id: str) -> TicketCreated:
    return TicketCreated(
        ticket_id=ticket_id,
        occurred_at=MONDAY,
        key="SPT-1001",
        policy_id="erp-vendor",
        request_type="support",
        priority="critical",
        subject="Paie bloquée",
        description="SwissDec refuse la transmission",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


async def receive(pool: asyncpg.Pool, event: TicketCreated) -> None:
    [envelope] = published_envelopes([event], DESKS.policies["erp-vendor"])
    async with pool.acquire() as conn, conn.transaction():
        await on_ticket_event(DESKS, lambda: MONDAY)(conn, envelope, decode_event(envelope))


async def test_more_than_a_batch_due_is_fired_in_one_call_each_once(pool: asyncpg.Pool) -> None:
    timers = [reminder(MONDAY + timedelta(seconds=n)) for n in range(250)]
    unknown = Timer("nobody-knows", TimerKind.SLA_BREACH, MONDAY, 1, "response:breach:high")
    known = critical(str(uuid.uuid4()))
    await receive(pool, known)  # its response warning and breach
    await arm(pool, [*timers, unknown])
    later = MONDAY + timedelta(days=3)
    assert await fire_due(pool, DESKS, later, limit=100) == 250 + 1 + 2  # its warning, breach
    assert await fire_due(pool, DESKS, later, limit=100) == 0
    events = await appended(pool)
    assert all(events[t.command_id] == 1 for t in timers)
    assert unknown.command_id not in events  # stale: marked, nothing appended
    async with pool.acquire() as conn:
        kinds = await conn.fetch(
            "SELECT event_type FROM events WHERE stream_id = $1 ORDER BY stream_version",
            known.ticket_id,
        )
    # a warning overdue once its clock has breached is dropped: the breach says it all
    assert [row["event_type"] for row in kinds] == ["SlaBreached"]
    assert len(events) == 250 + 1
    assert await pending(pool) == {}


async def test_two_replicas_fire_each_timer_once(database_url: str, pool: asyncpg.Pool) -> None:
    timers = [reminder(MONDAY + timedelta(milliseconds=n)) for n in range(600)]
    await arm(pool, timers)
    schema = await pool.fetchval("SELECT current_schema()")
    other = await asyncpg.create_pool(database_url, server_settings={"search_path": schema})
    assert other is not None
    try:
        handled = await asyncio.gather(
            *(fire_due(replica, DESKS, MONDAY + timedelta(hours=1), limit=50)
              for replica in (pool, other, pool, other))
        )  # fmt: skip
    finally:
        await other.close()
    assert sum(handled) == 600
    events = await appended(pool)
    assert len(events) == 600 and set(events.values()) == {1}


async def test_a_timer_failing_in_a_batch_written_together_leaves_the_others_fired_once(
    pool: asyncpg.Pool,
) -> None:
    """The batch is written together, fails on one timer's event (refused by a trigger here),
    then is fired one timer at a time: that one is put back, the others fire once."""
    bad = reminder(MONDAY, ticket_id="refused")
    timers = [reminder(MONDAY + timedelta(seconds=n)) for n in range(30)]
    await arm(pool, [bad, *timers])
    async with pool.acquire() as conn:
        await conn.execute(
            """CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                   IF NEW.stream_id = 'refused' THEN RAISE EXCEPTION 'refused'; END IF;
                   RETURN NEW;
               END $$;
               CREATE TRIGGER refuse BEFORE INSERT ON events
                   FOR EACH ROW EXECUTE FUNCTION refuse()"""
        )
    now = MONDAY + timedelta(minutes=5)
    with capture_logs() as logs:
        assert await fire_due(pool, DESKS, now) == 31
    assert [e["event"] for e in logs if e["log_level"] != "info"] == [
        "timer_batch_failed",
        "timer_failed",
    ]
    assert [e["ticket_id"] for e in logs if e["event"] == "timer_failed"] == ["refused"]
    events = await appended(pool)
    assert all(events[t.command_id] == 1 for t in timers)
    assert bad.command_id not in events
    assert await pending(pool) == {bad.command_id: now + timedelta(minutes=1)}  # put back
    async with pool.acquire() as conn:
        await conn.execute("DROP TRIGGER refuse ON events")
    assert await fire_due(pool, DESKS, now + timedelta(minutes=1)) == 1  # retried later
    assert (await appended(pool))[bad.command_id] == 1


async def test_a_timer_whose_meaning_cannot_be_read_is_put_back_alone(pool: asyncpg.Pool) -> None:
    """A request whose desk is unknown (its policy removed): its SLA timer fails before the
    batch is written; the reminders of the same batch fire."""
    known = critical(str(uuid.uuid4()))
    await receive(pool, known)
    async with pool.acquire() as conn:
        await conn.execute(
            """UPDATE request_states SET state = jsonb_set(state, '{policy_id}', '"gone"')
               WHERE ticket_id = $1""",
            known.ticket_id,
        )
    timers = [reminder(MONDAY + timedelta(seconds=n)) for n in range(5)]
    await arm(pool, timers)
    now = MONDAY + timedelta(days=3)
    with capture_logs() as logs:
        assert await fire_due(pool, DESKS, now) == 5 + 2
    failed = [e for e in logs if e["event"] == "timer_failed"]
    assert [e["ticket_id"] for e in failed] == [known.ticket_id] * 2
    assert "timer_batch_failed" not in [e["event"] for e in logs]  # the others written together
    events = await appended(pool)
    assert all(events[t.command_id] == 1 for t in timers) and len(events) == 5
    assert set((await pending(pool)).values()) == {now + timedelta(minutes=1)}


async def test_a_timer_already_appended_appends_nothing_again(pool: asyncpg.Pool) -> None:
    done, others = reminder(MONDAY), [reminder(MONDAY) for _ in range(3)]
    await arm(pool, [done, *others])
    event = ReminderDue(
        ticket_id=done.ticket_id,
        occurred_at=MONDAY,
        armed_version=3,
        due_at=MONDAY,
        days_waiting=10,
    )
    async with pool.acquire() as conn:
        await append(
            conn, done.ticket_id, None, [NewEvent.from_event(event, event_id=done.command_id)]
        )
    with capture_logs() as logs:
        assert await fire_due(pool, DESKS, MONDAY + timedelta(minutes=1)) == 4
    assert [e["timer"] for e in logs if e["event"] == "timer_already_fired"] == [
        str(done.command_id)
    ]
    events = await appended(pool)
    assert set(events.values()) == {1} and len(events) == 4
    assert await pending(pool) == {}


async def test_the_loop_rests_until_the_next_timer_falls_due(pool: asyncpg.Pool) -> None:
    runtime = ServiceRuntime("sla", Settings())
    armed = fire_timers(runtime, pool, DESKS, lambda: datetime.now(UTC))
    stop = asyncio.Event()
    [loop] = runtime.loops
    task = asyncio.create_task(loop(stop))
    try:
        await asyncio.sleep(0.1)  # the first pass found nothing and rests
        due = datetime.now(UTC) + timedelta(seconds=0.3)
        soon = reminder(due)
        await arm(pool, [soon])
        armed.set()  # as the consumer does once it armed timers
        await asyncio.sleep(0.1)
        assert soon.command_id in await pending(pool)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if soon.command_id not in await pending(pool):
                break
        async with pool.acquire() as conn:
            fired_at = await conn.fetchval(
                "SELECT fired_at FROM timers WHERE timer_id = $1", soon.command_id
            )
    finally:
        stop.set()
        await task
    assert fired_at is not None and fired_at - due < timedelta(seconds=0.5)
