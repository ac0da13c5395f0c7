"""Workflow's lists of requests on the real PostgreSQL server: search by key or words, sort,
pages with a total count, the requests a person is involved in, and hostile searches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import envelope_of
from desk_servers import ticket_created as created
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.tickets import TicketCreated
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import on_command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
ANNE = bearer("anne@acme.example", audience="workflow", organisation="acme")
BOB = bearer("bob@acme.example", audience="workflow", organisation="acme")
CARLA = bearer("carla@globex.example", audience="workflow", organisation="globex")
AGENT = bearer("paul@partner.example", audience="workflow", roles={"cloud-partner": ["agent"]})
SUBJECTS = ["Printer 100% broken", "VPN_down on site", "Invoice printer jam", "Slow login"]


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, list[TicketCreated]]]:
    async with service_store(database_url, "workflow") as pool:
        events = await _open(pool)
        app = create_app(
            pool, POLICIES, lambda: events[0].occurred_at, verifier=verifier("workflow")
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as client:
            yield client, events


async def _open(pool: asyncpg.Pool) -> list[TicketCreated]:
    """Four requests of acme: Anne's first three (the third with Bob as participant), Bob's
    last; each one minute after the previous, with rising priorities."""
    base = created()
    events = []
    for n, subject in enumerate(SUBJECTS):
        requester = "bob@acme.example" if n == 3 else "anne@acme.example"
        event = base.model_copy(
            update={
                "ticket_id": f"{base.ticket_id[:-2]}{n:02d}",
                "key": f"LST-{(n + 1) * 5}",  # 5, 10, 15, 20: not in the order of their text
                "subject": subject,
                "requester_id": requester,
                "created_by": requester,
                "participants": ("bob@acme.example",) if n == 2 else (),
                "priority": ["low", "medium", "high", "critical"][n],
                "occurred_at": base.occurred_at + timedelta(minutes=n),
            }
        )
        handle = on_command(POLICIES, lambda at=event.occurred_at: at)
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope_of(event), event)
        events.append(event)
    return events


async def keys(client: httpx.AsyncClient, who: dict[str, str], **params: Any) -> list[str]:
    answer = await client.get("/requests", params={"state": "all", **params}, headers=who)
    assert answer.status_code == 200, answer.text
    return [row["key"] for row in answer.json()]


async def test_search_by_key_any_case_or_by_all_words_of_the_subject(http: Any) -> None:
    client, _ = http
    assert await keys(client, ANNE, q="lst-15") == ["LST-15"]
    assert await keys(client, ANNE, q="printer") == ["LST-15", "LST-5"]
    assert await keys(client, ANNE, q="PRINTER jam") == ["LST-15"]
    assert await keys(client, ANNE, q="printer vpn") == []


async def test_percent_and_underscore_are_taken_literally(http: Any) -> None:
    client, _ = http
    assert await keys(client, ANNE, q="100%") == ["LST-5"]
    assert await keys(client, ANNE, q="%") == ["LST-5"]
    assert await keys(client, ANNE, q="VPN_down") == ["LST-10"]
    assert await keys(client, ANNE, q="_") == ["LST-10"]
    assert await keys(client, ANNE, q="\\") == []


@pytest.mark.parametrize("q", ["a\x00b", "a\ud800b", "x" * 10_000, "x" * 201])
async def test_a_hostile_search_is_refused(http: Any, q: str) -> None:
    client, _ = http
    encoded = q.encode("utf-8", "surrogatepass")
    target = "/requests?q=" + "".join(f"%{b:02X}" for b in encoded)
    answer = await client.get(target, headers=ANNE)
    assert answer.status_code == 422


async def test_sorted_both_ways_by_each_column(http: Any) -> None:
    client, _ = http
    assert await keys(client, ANNE) == ["LST-20", "LST-15", "LST-10", "LST-5"]  # updated, newest
    assert await keys(client, ANNE, sort="created", order="asc") == [
        "LST-5", "LST-10", "LST-15", "LST-20",
    ]  # fmt: skip
    assert await keys(client, ANNE, sort="priority") == ["LST-20", "LST-15", "LST-10", "LST-5"]
    assert await keys(client, ANNE, sort="key", order="asc") == [
        "LST-5", "LST-10", "LST-15", "LST-20",
    ]  # fmt: skip
    assert len(await keys(client, ANNE, sort="status")) == 4
    refused = await client.get("/requests", params={"sort": "subject; drop"}, headers=ANNE)
    assert refused.status_code == 422


async def test_pages_with_the_total_count(http: Any) -> None:
    client, _ = http
    page = await client.get(
        "/requests", params={"state": "all", "limit": 3, "offset": 2}, headers=ANNE
    )
    assert page.headers["X-Total-Count"] == "4"
    assert [r["key"] for r in page.json()] == ["LST-10", "LST-5"]
    beyond = await client.get("/requests", params={"offset": 100_001}, headers=ANNE)
    assert beyond.status_code == 422


async def test_involving_me_lists_requester_creator_and_participant(http: Any) -> None:
    client, _ = http
    assert await keys(client, ANNE, involving="me") == ["LST-15", "LST-10", "LST-5"]
    assert await keys(client, BOB, involving="me") == ["LST-20", "LST-15"]
    answer = await client.get("/requests", params={"involving": "me"}, headers=BOB)
    assert answer.headers["X-Total-Count"] == "2"
    assert "involved" not in answer.json()[0]  # the customer's row keeps its shown fields


async def test_a_customer_of_another_organisation_finds_nothing(http: Any) -> None:
    client, _ = http
    assert await keys(client, CARLA, q="LST-5") == []
    refused = await client.get("/requests", params={"organisation_id": "acme"}, headers=CARLA)
    assert refused.status_code == 403
    assert await keys(client, AGENT, q="lst-5", organisation_id="acme") == ["LST-5"]
