"""A desk's SLA figures for its leads through sla's real API on the real PostgreSQL server:
today's warnings and breaches (the desk calendar's day) from what sla's timers appended, the
month's compliance per priority by the compliance report's own projection, for the desk's
support side only."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from published import published_envelopes
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.sla import SlaBreached
from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore.store import read_all
from desk_platform.consumer import decode_event
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import on_ticket_event
from sla.adapters.summary_api import day_bounds, month_bounds
from sla.application.timers import Desks, fire_due
from sla.domain.compliance import compliance

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
FRIDAY = datetime(2026, 2, 27, 14, 0, tzinfo=UTC)  # 15:00 in Geneva, a business day
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
NOW = MONDAY + timedelta(hours=3)  # 18:00 in Geneva: still Monday there
LEAD = bearer("lea@desk.example", audience="sla", roles={"erp-vendor": ["team_lead"]})
EXPERT = bearer("exp@desk.example", audience="sla", roles={"erp-vendor": ["product_expert"]})
ANNE = bearer("anne@acme.example", audience="sla", organisation="acme")
AGENT_ELSEWHERE = bearer("paul@desk.example", audience="sla", roles={"saas-desk": ["agent"]})
SYSTEM = bearer("service:timers", audience="sla", roles={"erp-vendor": ["system"]})
NO_ONE = bearer("someone@desk.example", audience="sla")


def created(at: datetime, priority: str, desk: str = "erp-vendor") -> TicketCreated:
    return TicketCreated(
        ticket_id=str(uuid.uuid4()),
        occurred_at=at,
        key=f"SPT-{uuid.uuid4().int % 10**8}",
        policy_id=desk,
        request_type="support",
        priority=priority,
        subject="Paie bloquée",
        description="SwissDec refuse la transmission",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


async def receive(pool: asyncpg.Pool, event: TicketCreated) -> None:
    """sla's consumer applies the request's creation when it happens."""
    (envelope,) = published_envelopes([event], DESKS.policies[event.policy_id])
    async with pool.acquire() as conn, conn.transaction():
        handle = on_ticket_event(DESKS, lambda: event.occurred_at)
        await handle(conn, envelope, decode_event(envelope))


@pytest.fixture
async def story(database_url: str) -> AsyncIterator[tuple[asyncpg.Pool, dict[str, Any]]]:
    """Friday: a critical request warned then breached. Monday: a critical one warned then
    breached, a low one, and a critical one of another desk."""
    async with service_store(database_url, "sla") as pool:
        friday = created(FRIDAY, "critical")
        await receive(pool, friday)
        assert await fire_due(pool, DESKS, FRIDAY + timedelta(minutes=50)) == 1  # warning
        assert await fire_due(pool, DESKS, FRIDAY + timedelta(hours=2)) == 1  # breach
        tickets = {
            "friday": friday,
            "critical": created(MONDAY, "critical"),
            "low": created(MONDAY, "low"),
            "elsewhere": created(MONDAY, "critical", "cloud-partner"),
        }
        for name in ("critical", "low", "elsewhere"):
            await receive(pool, tickets[name])
        await fire_due(pool, DESKS, MONDAY + timedelta(minutes=50))
        await fire_due(pool, DESKS, MONDAY + timedelta(hours=2))
        yield pool, tickets


@pytest.fixture
async def http(story: tuple[asyncpg.Pool, dict[str, Any]]) -> AsyncIterator[httpx.AsyncClient]:
    pool, _ = story
    app = create_app(pool, DESKS, lambda: NOW, verifier=verifier("sla"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sla") as client:
        yield client


async def summary(http: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    answer = await http.get("/desks/erp-vendor/summary", params=params, headers=LEAD)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def by_priority(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["priority"]: row for row in body["compliance"]["priorities"]}


async def test_today_counts_the_warnings_and_breaches_fired_on_the_desks_day(
    http: httpx.AsyncClient,
) -> None:
    today = (await summary(http))["today"]
    assert (today["date"], today["time_zone"]) == ("2026-03-02", "Europe/Zurich")
    assert today["warnings"] == {"total": 1, "response": 1, "resolution": 0}
    assert today["breaches"] == {"total": 1, "response": 1, "resolution": 0}
    rows = {row["priority"]: row for row in today["by_priority"]}
    assert list(rows) == ["low", "medium", "high", "critical"]  # the desk's, lowest first
    assert rows["critical"] == {"priority": "critical", "warnings": 1, "breaches": 1}
    assert rows["low"] == {"priority": "low", "warnings": 0, "breaches": 0}


async def test_the_months_compliance_per_priority(http: httpx.AsyncClient) -> None:
    march = await summary(http)
    assert march["compliance"]["month"] == "2026-03"  # the current month by default
    rows = by_priority(march)
    assert rows["critical"] == {
        "priority": "critical", "requests": 1, "response_breached": 1, "resolution_breached": 0,
        "response_kept": 0.0, "resolution_kept": 1.0,
    }  # fmt: skip
    assert (rows["low"]["requests"], rows["low"]["response_kept"]) == (1, 1.0)
    assert rows["medium"]["requests"] == 0 and rows["medium"]["response_kept"] is None
    february = by_priority(await summary(http, month="2026-02"))
    assert (february["critical"]["requests"], february["critical"]["response_breached"]) == (1, 1)
    assert february["low"]["requests"] == 0
    assert by_priority(await summary(http, month="2025-12"))["critical"]["requests"] == 0


async def test_the_dashboard_and_the_report_agree(
    story: tuple[asyncpg.Pool, dict[str, Any]], http: httpx.AsyncClient
) -> None:
    """The report's projection over the log (the requests' creations, the breaches sla
    published) gives the dashboard's figures for the desk's requests."""
    pool, tickets = story
    async with pool.acquire() as conn:
        stored = await read_all(conn, 0)
    breaches: list[Event] = [
        SlaBreached.model_validate(e.payload) for e in stored if e.event_type == "SlaBreached"
    ]
    ours = [t for t in tickets.values() if t.policy_id == "erp-vendor"]
    report = {(r.month, r.priority): r for r in compliance([*ours, *breaches])}
    for month in ("2026-02", "2026-03"):
        for row in (await summary(http, month=month))["compliance"]["priorities"]:
            expected = report.get((month, row["priority"]))
            if expected is None:
                assert row["requests"] == 0
                continue
            assert (row["requests"], row["response_breached"], row["resolution_breached"]) == (
                expected.requests,
                expected.response_breached,
                expected.resolution_breached,
            )
            assert row["response_kept"] == expected.response_kept


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        (ANNE, 403),  # a customer of the desk
        (AGENT_ELSEWHERE, 403),  # staff of another desk
        (SYSTEM, 403),  # the automations read nothing
        (NO_ONE, 403),
        ({**LEAD, "X-Actor-Role": "service_desk"}, 403),  # a role not granted
        (EXPERT, 200),  # any support role of the desk
        ({**LEAD, "X-Actor-Role": "team_lead"}, 200),
    ],
)
async def test_the_summary_is_for_the_support_side_of_its_desk(
    http: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    answer = await http.get("/desks/erp-vendor/summary", headers=headers)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize("month", ["2026-13", "2026-3", "26-03", "0000-01", "2026-03x", "x" * 500])
async def test_a_month_that_is_not_one_is_refused(http: httpx.AsyncClient, month: str) -> None:
    answer = await http.get("/desks/erp-vendor/summary", params={"month": month}, headers=LEAD)
    assert answer.status_code == 422


async def test_an_unknown_desk_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.get("/desks/nope/summary", headers=LEAD)
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no desk 'nope'"


def test_a_month_and_a_day_of_the_desk_in_utc() -> None:
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    zone = DESKS.calendars["ch-geneva-business"].zone
    start, end = day_bounds(datetime(2026, 3, 29).date(), zone)  # summer time starts that day
    assert (start, end - start) == (datetime(2026, 3, 28, 23, tzinfo=UTC), timedelta(hours=23))
