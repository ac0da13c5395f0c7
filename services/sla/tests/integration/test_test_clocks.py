"""Test clocks in sla on the real PostgreSQL server: a request on a clock is armed at the clock's
instant, its timers never fire by the real time, and advancing fires them step by step, in
order, each step waiting until the commands it fired were acted on (or for `WAIT_SECONDS`)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from published import published_envelopes
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.tickets import Channel, InformationRequested, ReminderSent, TicketCreated
from desk_eventstore.store import read_all
from desk_platform.consumer import decode_event
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.kafka import on_ticket_event
from sla.application.testclocks import (
    WAIT_SECONDS,
    ClockRefused,
    advance,
    clock_of,
    create_clock,
    step_clocks,
)
from sla.application.timers import Desks, fire_due

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
ERP = DESKS.policies["erp-vendor"]
FROZEN = datetime(2025, 2, 3, 9, 0, tzinfo=UTC)  # a Monday, long past in real time
REAL = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "sla") as pool:
        yield pool


def waiting_request(clock_id: str) -> list[Event]:
    ticket_id = str(uuid.uuid4())
    created = TicketCreated(
        ticket_id=ticket_id, occurred_at=FROZEN, key="SPT-1001", policy_id="erp-vendor",
        request_type="support", priority="medium", subject="Clôture bloquée",
        description="La clôture ne se termine pas", organisation_id="acme",
        requester_id="anne@acme.example", created_by="anne@acme.example",
        channel=Channel.PORTAL, test_clock=clock_id,
    )  # fmt: skip
    asked = InformationRequested(
        ticket_id=ticket_id, occurred_at=FROZEN, actor_id="paul@desk.example",
        actor_role="service_desk", from_status="open", to_status="waiting_customer",
        comment="Quelle version ?",
    )  # fmt: skip
    return [created, asked]


async def receive_all(pool: asyncpg.Pool, events: list[Event]) -> None:
    for envelope in published_envelopes(events, ERP):
        async with pool.acquire() as conn, conn.transaction():
            await on_ticket_event(DESKS, lambda: REAL)(conn, envelope, decode_event(envelope))


async def fired(pool: asyncpg.Pool, ticket_id: str) -> list[tuple[str, datetime]]:
    async with pool.acquire() as conn:
        events = await read_all(conn, 0, 1000)
    return [
        (e.event_type, datetime.fromisoformat(e.payload["occurred_at"]))
        for e in events
        if e.stream_id == ticket_id
    ]


async def test_advancing_fires_each_step_at_its_instant_after_the_last_was_acted_on(
    pool: asyncpg.Pool,
) -> None:
    clock_id = f"tc-{uuid.uuid4().hex[:8]}"
    await create_clock(
        pool, clock_id, desk="erp-vendor", at=FROZEN, attached_to="requests", name="", by="lea",
        now=REAL,
    )  # fmt: skip
    events = waiting_request(clock_id)
    ticket_id = events[0].ticket_id
    await receive_all(pool, events)
    assert await fire_due(pool, DESKS, REAL) == 0  # the real time fires none of its timers

    target = FROZEN + timedelta(days=21)
    moving = await advance(pool, clock_id, target, REAL)
    assert moving is not None and moving.status == "advancing"
    with pytest.raises(ClockRefused, match="advancing"):
        await advance(pool, clock_id, target + timedelta(days=1), REAL)

    assert await step_clocks(pool, DESKS, REAL) == 0  # the 10-day reminder fired: it waits
    assert await fired(pool, ticket_id) == [("ReminderDue", FROZEN + timedelta(days=10))]
    assert await step_clocks(pool, DESKS, REAL) == 0  # not acted on yet: nothing moves
    async with pool.acquire() as conn:
        clock = await clock_of(conn, clock_id)
    assert clock is not None and clock.now == FROZEN + timedelta(days=10)

    reminded = ReminderSent(
        ticket_id=ticket_id, occurred_at=FROZEN + timedelta(days=10), days_waiting=10,
        armed_version=2,
    )  # fmt: skip
    await receive_all(pool, [*events, reminded])  # workflow acted on it: the next step goes
    assert await step_clocks(pool, DESKS, REAL) == 0
    assert [kind for kind, _ in await fired(pool, ticket_id)] == ["ReminderDue", "ReminderDue"]
    assert (await fired(pool, ticket_id))[-1][1] == FROZEN + timedelta(days=15)

    later = REAL + timedelta(seconds=WAIT_SECONDS)  # never acted on: it goes on without
    assert await step_clocks(pool, DESKS, later) == 0
    assert [kind for kind, _ in await fired(pool, ticket_id)][-1] == "AutoCloseDue"
    assert await step_clocks(pool, DESKS, later + timedelta(seconds=WAIT_SECONDS)) == 1
    async with pool.acquire() as conn:
        ready = await clock_of(conn, clock_id)
    assert ready is not None and (ready.status, ready.now) == ("ready", target)
    with pytest.raises(ClockRefused, match="only moves forward"):
        await advance(pool, clock_id, target, REAL)
