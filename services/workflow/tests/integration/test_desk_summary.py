"""A desk's figures for its leads through workflow's real API on the real PostgreSQL server:
open requests by status and by expected actor (closed ones and other desks' left out), the
satisfaction ratings of the survey answers workflow accepted (all, or of a period), for the
desk's support side only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import envelope_of, open_in_workflow, ticket_created
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.requests import SurveySubmitted
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import on_command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EARLIER = datetime(2026, 2, 20, 9, 0, tzinfo=UTC)
LEAD = bearer("lea@desk.example", audience="workflow", roles={"erp-vendor": ["team_lead"]})
SUPERVISOR = bearer("lea@desk.example", audience="workflow", roles={"saas-desk": ["supervisor"]})
SAAS_AGENT = bearer("paul@desk.example", audience="workflow", roles={"saas-desk": ["agent"]})
ANNE = bearer("anne@acme.example", audience="workflow", organisation="acme")
NO_ONE = bearer("someone@desk.example", audience="workflow")
SYSTEM = bearer("service:timers", audience="workflow", roles={"erp-vendor": ["system"]})


async def opened(pool: asyncpg.Pool, desk: str, request_type: str = "support") -> str:
    event = ticket_created(desk, request_type)
    await open_in_workflow(pool, event)
    return event.ticket_id


async def answered(pool: asyncpg.Pool, ticket_id: str, rating: int, at: datetime) -> None:
    """The requester's survey answer, as intake forwards it, accepted at `at`."""
    event = SurveySubmitted(
        ticket_id=ticket_id, occurred_at=at, respondent_id="anne@acme.example", rating=rating
    )
    async with pool.acquire() as conn, conn.transaction():
        await on_command(POLICIES, lambda: at)(conn, envelope_of(event), event)


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """erp-vendor: two requests open, one in progress, one closed; saas-desk: three closed
    requests rated 5 and 2 this month and 4 earlier, one open; cloud-partner: one open."""
    async with service_store(database_url, "workflow") as pool:
        app = create_app(pool, POLICIES, lambda: NOW, verifier=verifier("workflow"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as client:
            erp = [await opened(pool, "erp-vendor") for _ in range(4)]
            started = await client.post(f"/requests/{erp[2]}/start-work", headers=LEAD)
            assert started.status_code == 200, started.text
            closed = await client.post(
                f"/requests/{erp[3]}/close", json={"resolution_code": "handled"}, headers=LEAD
            )
            assert closed.status_code == 200, closed.text
            saas = [await opened(pool, "saas-desk", "problem_report") for _ in range(4)]
            for ticket, rating, at in zip(saas, (5, 2, 4), (NOW, NOW, EARLIER), strict=False):
                done = await client.post(
                    f"/requests/{ticket}/close",
                    json={"resolution_code": "fixed"},
                    headers=SAAS_AGENT,
                )
                assert done.status_code == 200, done.text
                await answered(pool, ticket, rating, at)
            await answered(pool, saas[0], 1, NOW)  # a second answer is refused: not counted
            await opened(pool, "cloud-partner")
            yield client


async def summary(
    http: httpx.AsyncClient, desk: str, headers: dict[str, str], **params: str
) -> dict[str, Any]:
    answer = await http.get(f"/desks/{desk}/summary", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_open_requests_by_status_and_by_expected_actor(http: httpx.AsyncClient) -> None:
    figures = (await summary(http, "erp-vendor", LEAD))["open"]
    assert figures["total"] == 3
    by_status = {row["status"]: row["count"] for row in figures["by_status"]}
    assert list(by_status) == [
        "open", "qualified", "in_progress", "waiting_triage", "waiting_rnd", "escalated_level2",
        "waiting_customer", "resolved",
    ]  # fmt: skip  # every status that is not closed, in the policy's order
    assert (by_status["open"], by_status["in_progress"], by_status["qualified"]) == (2, 1, 0)
    by_actor = {row["expected_actor"]: row["count"] for row in figures["by_expected_actor"]}
    assert by_actor == {
        "front_desk": 2, "daily": 0, "service_desk": 1, "product_expert": 0, "rnd": 0,
        "level2_consultant": 0, "requester": 0,
    }  # fmt: skip


async def test_satisfaction_ratings_and_their_average(http: httpx.AsyncClient) -> None:
    body = await summary(http, "saas-desk", SUPERVISOR)
    assert body["open"]["total"] == 1
    ratings = body["satisfaction"]
    assert (ratings["enabled"], ratings["scale"], ratings["answers"]) == (True, 5, 3)
    assert [row["count"] for row in ratings["by_rating"]] == [0, 1, 0, 1, 1]  # 1 to 5
    assert ratings["average"] == round(11 / 3, 2)
    march = (await summary(http, "saas-desk", SUPERVISOR, since="2026-03-01"))["satisfaction"]
    assert (march["answers"], march["average"], march["since"]) == (2, 3.5, "2026-03-01")
    before = await summary(http, "saas-desk", SUPERVISOR, since="2026-02-01", until="2026-03-01")
    assert before["satisfaction"]["answers"] == 1
    assert before["satisfaction"]["average"] == 4.0
    erp = (await summary(http, "erp-vendor", LEAD))["satisfaction"]
    assert (erp["enabled"], erp["answers"], erp["average"]) == (False, 0, None)


async def test_a_period_counts_days_in_the_desks_time_zone(http: httpx.AsyncClient) -> None:
    zone = POLICIES["saas-desk"].zone
    midnight = NOW.astimezone(zone).replace(hour=0, minute=0) + timedelta(days=1)
    day = midnight.date().isoformat()
    later = await summary(http, "saas-desk", SUPERVISOR, since=day)
    assert later["satisfaction"]["answers"] == 0


@pytest.mark.parametrize(
    ("desk", "headers", "status"),
    [
        ("erp-vendor", {}, 401),
        ("erp-vendor", ANNE, 403),  # a customer of the desk
        ("erp-vendor", SAAS_AGENT, 403),  # staff of another desk
        ("erp-vendor", SYSTEM, 403),
        ("erp-vendor", NO_ONE, 403),
        ("erp-vendor", {**LEAD, "X-Actor-Role": "service_desk"}, 403),  # not granted
        ("erp-vendor", {**LEAD, "X-Actor-Role": "team_lead"}, 200),
        ("saas-desk", SAAS_AGENT, 200),
        ("nope", LEAD, 404),
    ],
)
async def test_the_summary_is_for_the_support_side_of_its_desk(
    http: httpx.AsyncClient, desk: str, headers: dict[str, str], status: int
) -> None:
    answer = await http.get(f"/desks/{desk}/summary", headers=headers)
    assert answer.status_code == status, answer.text


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"since": "2026-02-30"}, "since: '2026-02-30' is not a day (YYYY-MM-DD)"),
        ({"until": "2026-13-01"}, "until: '2026-13-01' is not a day (YYYY-MM-DD)"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until: the period ends before it starts"),
        ({"since": "2026-3-1"}, None),
        ({"since": "x" * 300}, None),
        ({"since": "2026-03-01\x00"}, None),
        ({"since": "0001-01-01"}, "dates run from 1970-01-01 to 9998-12-31"),  # not a 500
        ({"until": "9999-12-31"}, "dates run from 1970-01-01 to 9998-12-31"),
    ],
)
async def test_a_period_that_is_not_one_is_refused(
    http: httpx.AsyncClient, params: dict[str, str], detail: str | None
) -> None:
    answer = await http.get("/desks/erp-vendor/summary", params=params, headers=LEAD)
    assert answer.status_code == 422
    if detail is not None:
        assert answer.json()["detail"] == detail
