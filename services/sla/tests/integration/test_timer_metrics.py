"""sla's timer metrics on the real PostgreSQL server (`sla.adapters.metrics`): the timers a
request's event arms, those due and not fired yet, those fired, and how late."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from published import published_envelopes
from service_support import service_store

from desk_contracts.tickets import Channel, TicketCreated
from desk_platform.consumer import decode_event
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.kafka import on_ticket_event
from sla.adapters.metrics import TimerMetrics
from sla.application.timers import Desks, due_timers, fire_due

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 in Geneva, a business day


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "sla") as pool:
        yield pool


def critical() -> TicketCreated:
    """A critical request of the ERP desk: its response warned after 45 business minutes."""
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


def sample(registry: CollectorRegistry, name: str, kind: str) -> float:
    return registry.get_sample_value(name, {"kind": kind}) or 0.0


async def test_a_request_arms_its_timers_and_each_fired_is_counted_with_its_lateness(
    pool: asyncpg.Pool,
) -> None:
    registry = CollectorRegistry()
    meter = TimerMetrics(registry)
    [envelope] = published_envelopes([critical()], DESKS.policies["erp-vendor"])
    async with pool.acquire() as conn, conn.transaction():
        await on_ticket_event(DESKS, lambda: MONDAY, meter)(conn, envelope, decode_event(envelope))
    assert sample(registry, "desk_sla_timers_armed_total", "sla_warning") == 1
    assert sample(registry, "desk_sla_timers_armed_total", "sla_breach") == 1
    assert sample(registry, "desk_sla_timers_armed_total", "reminder") == 0

    later = MONDAY + timedelta(minutes=50)  # the warning (at 45 minutes) is 5 minutes late
    meter.due(await due_timers(pool, later))
    assert sample(registry, "desk_sla_timers_due", "sla_warning") == 1
    assert sample(registry, "desk_sla_timers_due", "sla_breach") == 0

    assert await fire_due(pool, DESKS, later, meter=meter) == 1
    assert sample(registry, "desk_sla_timers_fired_total", "sla_warning") == 1
    assert sample(registry, "desk_sla_timers_fired_total", "sla_breach") == 0
    lateness = "desk_sla_timer_lateness_seconds"
    assert sample(registry, f"{lateness}_sum", "sla_warning") == pytest.approx(300.0)
    bucket = {"kind": "sla_warning", "le": "60.0"}
    assert registry.get_sample_value(f"{lateness}_bucket", bucket) == 0
    bucket["le"] = "300.0"
    assert registry.get_sample_value(f"{lateness}_bucket", bucket) == 1

    meter.due(await due_timers(pool, later))
    assert sample(registry, "desk_sla_timers_due", "sla_warning") == 0  # fired: no longer due
    assert await fire_due(pool, DESKS, later, meter=meter) == 0
    assert sample(registry, "desk_sla_timers_fired_total", "sla_warning") == 1  # once
