"""The sla service's timers on the real PostgreSQL server: armed from history, fired once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.tickets import Channel, CommentAdded, TicketCreated
from desk_eventstore.store import read_all
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks, clocks_of, fire_due
from sla.domain.clocks import read_clocks

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 in Geneva, a business day


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "sla") as pool:
        yield pool


def created() -> TicketCreated:
    return TicketCreated(
        ticket_id=str(uuid.uuid4()),
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


async def receive(pool: asyncpg.Pool, event: Event, version: int, now: datetime) -> None:
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="/desk/intake",
        subject=event.ticket_id,
        time=now,
        data=event.model_dump(mode="json"),
        extensions={"streamversion": str(version)},
    )
    async with pool.acquire() as conn, conn.transaction():
        await on_ticket_event(DESKS, lambda: now)(conn, envelope, event)


async def test_response_timers_are_armed_then_fired_once_each(pool: asyncpg.Pool) -> None:
    event = created()
    await receive(pool, event, 1, MONDAY)
    async with pool.acquire() as conn:
        armed = await conn.fetch("SELECT kind, fire_at FROM timers ORDER BY fire_at")
    assert [row["kind"] for row in armed] == ["sla_warning", "sla_breach"]
    assert all(row["fire_at"] > MONDAY for row in armed)

    assert await fire_due(pool, DESKS, MONDAY) == 0  # nothing due yet
    warned = MONDAY + timedelta(minutes=50)  # critical: 60 business minutes, warning at 75 %
    assert await fire_due(pool, DESKS, warned) == 1
    much_later = MONDAY + timedelta(days=3)
    assert await fire_due(pool, DESKS, much_later) == 1
    assert await fire_due(pool, DESKS, much_later) == 0
    await receive(pool, event, 1, much_later)  # the same event again re-arms nothing fired
    assert await fire_due(pool, DESKS, much_later) == 0
    async with pool.acquire() as conn:
        published = await read_all(conn, 0)
    assert [e.event_type for e in published] == ["SlaWarningReached", "SlaBreached"]
    assert {e.stream_id for e in published} == {event.ticket_id}
    assert published[1].payload["clock"] == "response"


async def test_an_overdue_warning_after_the_breach_is_dropped(pool: asyncpg.Pool) -> None:
    event = created()
    await receive(pool, event, 1, MONDAY)
    assert await fire_due(pool, DESKS, MONDAY + timedelta(days=3)) == 2  # both handled...
    async with pool.acquire() as conn:
        published = await read_all(conn, 0)
    assert [e.event_type for e in published] == ["SlaBreached"]  # ...the breach says it all


async def test_a_gap_in_the_history_arms_nothing_until_it_is_filled(pool: asyncpg.Pool) -> None:
    event = created()
    later = event.model_copy(update={"ticket_id": event.ticket_id})
    await receive(pool, later, 2, MONDAY)  # version 2 first: version 1 is missing
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM timers") == 0


async def test_the_board_sorts_open_requests_by_business_time_left(pool: asyncpg.Pool) -> None:
    import httpx

    from sla.adapters.http import create_app

    urgent, calm = created(), created().model_copy(update={"priority": "low"})
    calm = calm.model_copy(update={"ticket_id": str(uuid.uuid4()), "key": "SPT-1002"})
    for event in (calm, urgent):
        await receive(pool, event, 1, MONDAY)
    app = create_app(pool, DESKS, lambda: MONDAY + timedelta(minutes=30))
    transport = httpx.ASGITransport(app=app)
    staff = {"X-Actor-Role": "service_desk"}
    async with httpx.AsyncClient(transport=transport, base_url="http://sla", headers=staff) as http:
        board = (await http.get("/board", params={"policy_id": "erp-vendor"})).json()
        unknown = await http.get("/board", params={"policy_id": "nope"})
    assert [row["ticket_id"] for row in board] == [urgent.ticket_id, calm.ticket_id]
    assert board[0]["response_state"] == "running"
    assert board[0]["business_time_left_s"] == 30 * 60  # critical: 60 business minutes
    assert unknown.status_code == 404


async def test_a_ticket_s_history_keeps_its_facts_not_its_long_texts(pool: asyncpg.Pool) -> None:
    """A request with many large comments: what sla keeps (and reads for each clock) stays
    small, and the clocks are those of the whole events."""
    event = created()
    comments = [
        CommentAdded(
            ticket_id=event.ticket_id,
            occurred_at=MONDAY + timedelta(minutes=n),
            actor_id="anne@acme.example",
            actor_role="requester",
            body="\N{GRINNING FACE}" * 100_000,
            public=True,
        )
        for n in range(1, 21)
    ]
    await receive(pool, event, 1, MONDAY)
    for version, comment in enumerate(comments, start=2):
        await receive(pool, comment, version, MONDAY + timedelta(minutes=30))
    later = MONDAY + timedelta(minutes=30)
    async with pool.acquire() as conn:
        kept = await conn.fetchval(
            "SELECT sum(octet_length(payload::text)) FROM histories WHERE ticket_id = $1",
            event.ticket_id,
        )
        clocks = await clocks_of(conn, DESKS, event.ticket_id, later)
    assert kept < 100_000, kept  # 20 comments of 400 kB each: 8 MB if kept whole
    policy, calendar = DESKS.of(event.policy_id)
    assert clocks == read_clocks([event, *comments], policy, calendar, later)
    assert clocks is not None and clocks.version == 21
