"""The sla service's timers on the real PostgreSQL server: armed from the request state workflow
publishes with each event, fired once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from identity_support import bearer, verifier
from published import published_envelopes, published_states
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    InformationRequested,
    ReminderSent,
    TicketCreated,
)
from desk_eventstore.store import read_all
from desk_platform.consumer import PoisonMessage, decode_event
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks, clocks_of, fire_due
from sla.domain.clocks import read_clocks
from sla.domain.timeline import Timeline

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
ERP = DESKS.policies["erp-vendor"]
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


def commented(ticket: TicketCreated, minutes: int, body: str = "...") -> CommentAdded:
    return CommentAdded(
        ticket_id=ticket.ticket_id,
        occurred_at=MONDAY + timedelta(minutes=minutes),
        actor_id="anne@acme.example",
        actor_role="requester",
        body=body,
        public=True,
    )


async def receive(pool: asyncpg.Pool, envelope: Envelope, now: datetime) -> None:
    """sla's consumer applies `envelope` (a record of `ticket-events`) at `now`."""
    async with pool.acquire() as conn, conn.transaction():
        await on_ticket_event(DESKS, lambda: now)(conn, envelope, decode_event(envelope))


async def receive_all(pool: asyncpg.Pool, events: list[Event], now: datetime) -> None:
    for envelope in published_envelopes(events, ERP):
        await receive(pool, envelope, now)


async def armed(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT kind, occurrence, fire_at, armed_version FROM timers WHERE fired_at IS NULL"
            " ORDER BY fire_at"
        )
    return rows


async def test_response_timers_are_armed_then_fired_once_each(pool: asyncpg.Pool) -> None:
    event = created()
    [envelope] = published_envelopes([event], ERP)
    await receive(pool, envelope, MONDAY)
    timers = await armed(pool)
    assert [row["kind"] for row in timers] == ["sla_warning", "sla_breach"]
    assert all(row["fire_at"] > MONDAY for row in timers)

    assert await fire_due(pool, DESKS, MONDAY) == 0  # nothing due yet
    warned = MONDAY + timedelta(minutes=50)  # critical: 60 business minutes, warning at 75 %
    assert await fire_due(pool, DESKS, warned) == 1
    much_later = MONDAY + timedelta(days=3)
    assert await fire_due(pool, DESKS, much_later) == 1
    assert await fire_due(pool, DESKS, much_later) == 0
    await receive(pool, envelope, much_later)  # the same event again re-arms nothing fired
    assert await fire_due(pool, DESKS, much_later) == 0
    async with pool.acquire() as conn:
        published = await read_all(conn, 0)
    assert [e.event_type for e in published] == ["SlaWarningReached", "SlaBreached"]
    assert {e.stream_id for e in published} == {event.ticket_id}
    assert published[1].payload["clock"] == "response"


async def test_an_overdue_warning_after_the_breach_is_dropped(pool: asyncpg.Pool) -> None:
    await receive_all(pool, [created()], MONDAY)
    assert await fire_due(pool, DESKS, MONDAY + timedelta(days=3)) == 2  # both handled...
    async with pool.acquire() as conn:
        published = await read_all(conn, 0)
    assert [e.event_type for e in published] == ["SlaBreached"]  # ...the breach says it all


async def test_a_gap_in_the_versions_arms_nothing_until_it_is_filled(pool: asyncpg.Pool) -> None:
    event = created()
    first, second = published_envelopes([event, commented(event, 5)], ERP)
    await receive(pool, second, MONDAY)  # version 2 first: version 1 is missing
    assert await armed(pool) == []
    async with pool.acquire() as conn:
        assert await clocks_of(conn, DESKS, event.ticket_id, MONDAY) is None
    await receive(pool, first, MONDAY)
    assert {row["armed_version"] for row in await armed(pool)} == {2}  # the latest state's


async def test_reminders_and_auto_close_follow_the_published_waiting_state(
    pool: asyncpg.Pool,
) -> None:
    event = created()
    waiting = InformationRequested(
        ticket_id=event.ticket_id,
        occurred_at=MONDAY + timedelta(minutes=10),
        actor_id="bob",
        actor_role="agent",
        from_status=ERP.initial_status,
        to_status="waiting_customer",
        comment="Which version?",
    )
    reminded = ReminderSent(
        ticket_id=event.ticket_id,
        occurred_at=waiting.occurred_at + timedelta(days=10),
        actor_id="system",
        actor_role="system",
        days_waiting=10,
        armed_version=2,
    )
    await receive_all(pool, [event, waiting, reminded], reminded.occurred_at)
    by_kind = {row["kind"]: row for row in await armed(pool)}
    assert set(by_kind) == {"reminder", "auto_close"}  # the 10-day reminder was sent
    assert by_kind["reminder"]["occurrence"] == "reminder:15d:v2"
    assert by_kind["auto_close"]["occurrence"] == "auto_close:20d:v2"
    assert by_kind["auto_close"]["fire_at"] == waiting.occurred_at + timedelta(days=20)
    assert {row["armed_version"] for row in by_kind.values()} == {3}


# What is wrong with a record's request state (merged into the valid one; None: no state at all)
BAD_STATES: dict[str, tuple[dict[str, Any] | None, str]] = {
    "absent": (None, "the event carries no request state"),
    "invalid": ({"version": 0}, "(?s)invalid request state: .*version"),
    "of another ticket": (
        {"ticket_id": "other-ticket"},
        "the request state is of ticket 'other-ticket', the event of",
    ),
    "of an unknown desk": ({"policy_id": "nope"}, "unknown desk or calendar 'nope'"),
    "without a time zone": (
        {"updated_at": "2026-03-02T14:00:00"},
        "(?s)invalid request state: .*updated_at.*timezone",
    ),
}


@pytest.mark.parametrize("case", list(BAD_STATES))
async def test_a_ticket_event_without_a_valid_state_is_a_poison_message(
    pool: asyncpg.Pool, case: str
) -> None:
    changes, reason = BAD_STATES[case]
    [envelope] = published_envelopes([created()], ERP)
    state = None if changes is None else {**(envelope.request_state or {}), **changes}
    with pytest.raises(PoisonMessage, match=reason):
        await receive(pool, replace(envelope, request_state=state), MONDAY)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM request_steps") == 0


async def test_the_board_sorts_open_requests_by_business_time_left(pool: asyncpg.Pool) -> None:
    import httpx

    from sla.adapters.http import create_app

    urgent, calm = created(), created().model_copy(update={"priority": "low"})
    calm = calm.model_copy(update={"ticket_id": str(uuid.uuid4()), "key": "SPT-1002"})
    for event in (calm, urgent):
        await receive_all(pool, [event], MONDAY)
    app = create_app(pool, DESKS, lambda: MONDAY + timedelta(minutes=30), verifier=verifier("sla"))
    transport = httpx.ASGITransport(app=app)
    staff = bearer("sd@desk.example", audience="sla", roles={"erp-vendor": ["service_desk"]})
    async with httpx.AsyncClient(transport=transport, base_url="http://sla", headers=staff) as http:
        board = (await http.get("/board", params={"policy_id": "erp-vendor"})).json()
        unknown = await http.get("/board", params={"policy_id": "nope"})
    assert [row["ticket_id"] for row in board] == [urgent.ticket_id, calm.ticket_id]
    assert board[0]["response_state"] == "running"
    assert board[0]["business_time_left_s"] == 30 * 60  # critical: 60 business minutes
    assert unknown.status_code == 404


async def test_what_sla_keeps_of_a_request_stays_small_whatever_its_comments_hold(
    pool: asyncpg.Pool,
) -> None:
    """A request with many large comments: sla keeps a step per event and the latest state,
    never an event's text, and its clocks are those of the whole story."""
    event = created()
    comments = [commented(event, n, "\N{GRINNING FACE}" * 100_000) for n in range(1, 21)]
    later = MONDAY + timedelta(minutes=30)
    await receive_all(pool, [event, *comments], later)
    async with pool.acquire() as conn:
        kept = await conn.fetchval(
            "SELECT octet_length(state::text) FROM request_states WHERE ticket_id = $1",
            event.ticket_id,
        )
        steps = await conn.fetch(
            "SELECT status, priority FROM request_steps WHERE ticket_id = $1", event.ticket_id
        )
        clocks = await clocks_of(conn, DESKS, event.ticket_id, later)
    assert kept < 5_000, kept  # 20 comments of 400 kB each: 8 MB if kept whole
    assert len(steps) == 21
    states = published_states([event, *comments], ERP)
    policy, calendar = DESKS.of(event.policy_id)
    assert clocks == read_clocks(Timeline.of(states), states[-1], policy, calendar, later)
    assert clocks is not None and clocks.version == 21


async def kept(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """What sla keeps of its requests: steps, states, pending timers, board rows."""
    queries = {
        "steps": "SELECT * FROM request_steps ORDER BY ticket_id, version",
        "states": "SELECT * FROM request_states ORDER BY ticket_id",
        "timers": "SELECT * FROM timers WHERE fired_at IS NULL ORDER BY timer_id",
        "board": "SELECT * FROM clock_board ORDER BY ticket_id",
    }
    async with pool.acquire() as conn:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in queries.items()}


async def test_events_applied_as_a_set_keep_what_one_by_one_keeps(database_url: str) -> None:
    from sla.adapters.kafka import events_together

    first = created()
    second = first.model_copy(update={"ticket_id": str(uuid.uuid4()), "priority": "low"})
    a = published_envelopes([first, commented(first, 5), commented(first, 9)], ERP)
    b = published_envelopes([second, commented(second, 7)], ERP)
    envelopes = [a[0], b[0], a[1], b[1], a[2]]  # two requests' events interleaved
    records = [(envelope, decode_event(envelope)) for envelope in envelopes]
    now = MONDAY + timedelta(minutes=10)
    async with (
        service_store(database_url, "sla") as alone,
        service_store(database_url, "sla") as as_set,
    ):
        for envelope in envelopes:
            await receive(alone, envelope, now)
        async with as_set.acquire() as conn, conn.transaction():
            await events_together(DESKS, lambda: now).apply(conn, records)
        one_by_one = await kept(alone)
        assert await kept(as_set) == one_by_one
    assert len(one_by_one["states"]) == 2 and len(one_by_one["steps"]) == 5
    assert one_by_one["timers"]  # the response clocks' warnings and breaches
