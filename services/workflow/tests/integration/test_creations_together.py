"""Creations opened as one set, on the real PostgreSQL server: the same streams, events and
read-model rows as opening them one by one, and only intake's creations of known desks join a
set."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from desk_servers import envelope_of
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.sla import ReminderDue
from desk_contracts.tickets import Channel, TicketCreated
from desk_policies.loader import load_policies
from workflow.adapters.kafka import creations_together, on_command
from workflow.application.tickets import VIEW_COLUMNS

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def creation(n: int) -> TicketCreated:
    return TicketCreated(
        ticket_id=str(uuid.uuid4()), occurred_at=NOW + timedelta(seconds=n), key=f"SUP-{1001 + n}",
        policy_id="cloud-partner", request_type="support", priority="high",
        subject=f"Jira is slow {n}", description=f"Since the upgrade {n}",
        organisation_id="acme", requester_id="anne@acme.example",
        created_by="anne@acme.example", channel=Channel.PORTAL,
    )  # fmt: skip


async def stored(pool: asyncpg.Pool) -> tuple[list[Any], list[Any]]:
    """The store's events (without their positions and times) and the read model's rows."""
    async with pool.acquire() as conn:
        events = await conn.fetch(
            """SELECT stream_id, stream_version, event_id, event_type, payload, metadata
               FROM events ORDER BY stream_id"""
        )
        rows = await conn.fetch(f"SELECT {', '.join(VIEW_COLUMNS)} FROM tickets ORDER BY key")
    return [tuple(e) for e in events], [tuple(r) for r in rows]


async def test_creations_opened_as_a_set_are_stored_as_one_by_one(database_url: str) -> None:
    records = [(envelope_of(c), c) for c in (creation(n) for n in range(4))]
    handle = on_command(POLICIES, lambda: NOW)
    together = creations_together(POLICIES)
    async with (
        service_store(database_url, "workflow") as alone,
        service_store(database_url, "workflow") as as_set,
    ):
        for pool in (alone, as_set):  # the first request opened before, in both
            async with pool.acquire() as conn, conn.transaction():
                await handle(conn, *records[0])
        async with alone.acquire() as conn, conn.transaction():
            for envelope, event in records:
                await handle(conn, envelope, event)
        async with as_set.acquire() as conn, conn.transaction():
            await together.apply(conn, list(records))
        one_by_one = await stored(alone)
        assert await stored(as_set) == one_by_one
    events, rows = one_by_one
    assert len(events) == len(rows) == 4


def test_only_intakes_creations_of_known_desks_join_a_set() -> None:
    takes = creations_together(POLICIES).takes
    created = creation(0)
    reminder = ReminderDue(
        ticket_id=created.ticket_id, occurred_at=NOW, armed_version=1, due_at=NOW, days_waiting=10
    )
    unknown = created.model_copy(update={"policy_id": "nowhere"})
    cases: list[tuple[Envelope, Event, bool]] = [
        (envelope_of(created), created, True),
        (envelope_of(created, "/desk/sla"), created, False),
        (envelope_of(reminder, "/desk/sla"), reminder, False),
        (envelope_of(unknown), unknown, False),
    ]
    assert [takes(envelope, event) for envelope, event, _ in cases] == [w for _, _, w in cases]
