"""Lists of open requests in a read model whose history is mostly closed requests, on the real
PostgreSQL server: the counts and pages are those of the open requests, and they read the
indexes of the open requests only (migration 0004), not every request a desk, an agent or an
organisation ever had."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from service_support import service_store

from desk_policies.loader import load_policies
from workflow.adapters.http import RequestFilter, create_app, list_sql
from workflow.adapters.search_api import Criteria, search_sql

pytestmark = pytest.mark.integration

POLICIES = load_policies()
CLOSED, OPEN = 20_000, 30
PAUL = "paul@partner.example"
AGENT = bearer(PAUL, audience="workflow", roles={"cloud-partner": ["agent"]})
ANNE = bearer("anne@acme.example", audience="workflow", organisation="acme")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A read model of `CLOSED` closed requests of the desk (acme's and Paul's among them)
    and, newer, `OPEN` open ones of acme taken by Paul."""
    async with service_store(database_url, "workflow") as pool:
        async with pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO tickets (ticket_id, key, policy_id, organisation_id, requester_id,
                       subject, status, category, priority, assignee_id, version, created_at,
                       updated_at)
                   SELECT 't' || n, 'SUP-' || n, 'cloud-partner',
                          CASE WHEN n % 50 = 0 OR n > $1 THEN 'acme' ELSE 'org-' || n % 50 END,
                          'anne@acme.example', 'Request number ' || n,
                          CASE WHEN n > $1 THEN 'in_progress' ELSE 'closed' END,
                          CASE WHEN n > $1 THEN 'open' ELSE 'closed' END, 'high',
                          CASE WHEN n % 10 = 0 OR n > $1 THEN $3 ELSE 'agent-' || n % 10 END,
                          8, now() - ($2 - n) * interval '1 minute',
                          now() - ($2 - n) * interval '1 minute'
                   FROM generate_series(1, $2) AS n""",
                CLOSED,
                CLOSED + OPEN,
                PAUL,
            )
            await conn.execute("VACUUM ANALYZE tickets")
        yield pool


@pytest.fixture
async def http(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pool, POLICIES, lambda: datetime.now(UTC), verifier=verifier("workflow"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as client:
        yield client


async def test_the_open_lists_count_and_page_the_open_requests(http: httpx.AsyncClient) -> None:
    for who, params in (
        (AGENT, {"policy_id": "cloud-partner"}),
        (ANNE, {"organisation_id": "acme"}),
    ):
        answer = await http.get("/requests", params={**params, "limit": 10}, headers=who)
        assert answer.headers["X-Total-Count"] == str(OPEN), params
        assert [r["key"] for r in answer.json()] == [f"SUP-{CLOSED + OPEN - n}" for n in range(10)]
    answer = await http.get(
        "/search", params={"assignee_id": PAUL, "state": "open", "limit": 10}, headers=AGENT
    )
    assert answer.headers["X-Total-Count"] == str(OPEN)
    assert all(r["status"] == "in_progress" for r in answer.json())


def open_requests(**equal: str) -> RequestFilter:
    """The WHERE clause of a list of open requests, as `GET /requests` makes it."""
    where = RequestFilter([["cloud-partner"]], ["policy_id = ANY($1)"])
    for column, value in equal.items():
        where.equal(column, value)
    where.clauses.append("category <> 'closed'")
    return where


def indexes_read(plan: Any) -> set[str]:
    """The indexes a plan (EXPLAIN's JSON) reads."""
    if isinstance(plan, list):
        return set().union(*(indexes_read(p) for p in plan))
    if isinstance(plan, dict):
        found = {plan["Index Name"]} if "Index Name" in plan else set()
        return found.union(*(indexes_read(v) for v in plan.values()))
    return set()


async def test_the_open_lists_read_the_open_requests_indexes(pool: asyncpg.Pool) -> None:
    desk = open_requests(policy_id="cloud-partner")
    organisation = open_requests(organisation_id="acme")
    assigned = search_sql(Criteria(["cloud-partner"], assignee_id=PAUL, state="open"))
    words = search_sql(Criteria(["cloud-partner"], words="number", state="open"))
    statements = [
        (list_sql(desk, "updated", "desc")[0], desk.args),
        (list_sql(organisation, "updated", "desc")[0], organisation.args),
        (assigned.count, assigned.args),
        (words.count, words.args),
    ]
    async with pool.acquire() as conn:
        for sql, args in statements:
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
            read = indexes_read(plan)
            assert read and all(name.startswith("tickets_open_") for name in read), plan
