"""sla's queues through its real API on the real PostgreSQL server: a desk's requests, told as
workflow publishes them, filtered by category, status, who acts, assignee and how close to a
breach, sorted by business time left (paused clocks too), counted; for the desk's support side
only; hostile or wrong parameters refused with 422. The board rows written before the queues'
columns are completed from the states sla keeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from published import published_envelopes, published_states
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.tickets import (
    Channel,
    InformationRequested,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketQualified,
)
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_platform.consumer import decode_event
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks, complete_board, record

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
ERP = DESKS.policies["erp-vendor"]
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # 15:00 in Geneva, a business day
NOW = MONDAY + timedelta(minutes=50)  # when the queues are read
STAFF = bearer("sd@desk.example", audience="sla", roles={"erp-vendor": ["service_desk"]})
ANNE = bearer("anne@acme.example", audience="sla", organisation="acme")
AGENT_ELSEWHERE = bearer("paul@desk.example", audience="sla", roles={"saas-desk": ["agent"]})
PAUL = "paul@desk.example"


def created(name: str, priority: str, at: datetime = MONDAY) -> TicketCreated:
    return TicketCreated(
        ticket_id=str(uuid.uuid4()),
        occurred_at=at,
        key=f"SPT-{name}",
        policy_id="erp-vendor",
        request_type="support",
        priority=priority,
        subject=f"Request {name}",
        description="...",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


def acted(ticket: TicketCreated, minutes: int) -> dict[str, Any]:
    return {
        "ticket_id": ticket.ticket_id,
        "occurred_at": ticket.occurred_at + timedelta(minutes=minutes),
        "actor_id": "lea@desk.example",
        "actor_role": "team_lead",
    }


def stories() -> dict[str, list[Event]]:
    """Six requests of erp-vendor, by name (the key is SPT-<name>)."""
    late = created("1", "critical", MONDAY - timedelta(hours=7))  # 08:00 in Geneva: breached
    soon = created("2", "critical")  # response due at 16:00 in Geneva, warned at 15:45
    calm = created("3", "low")
    qualified = created("4", "medium")
    waiting = created("5", "high")
    closed = created("6", "medium")
    return {
        "late": [late],
        "soon": [soon],
        "calm": [calm],
        "qualified": [
            qualified,
            TicketQualified(**acted(qualified, 5), from_status="open", to_status="qualified"),
            TicketAssigned(
                **acted(qualified, 6),
                from_status="qualified",
                to_status="qualified",
                assignee_id=PAUL,
            ),
        ],
        "waiting": [
            waiting,
            InformationRequested(
                **acted(waiting, 10),
                from_status="open",
                to_status="waiting_customer",
                comment="Which version?",
            ),
        ],
        "closed": [
            closed,
            TicketClosed(
                **acted(closed, 5),
                from_status="open",
                to_status="closed",
                resolution_code="handled",
            ),
        ],
    }


async def receive_all(pool: asyncpg.Pool, events: list[Event]) -> None:
    """sla's consumer applies `events` (told at `NOW`, after all of them)."""
    for envelope in published_envelopes(events, ERP):
        async with pool.acquire() as conn, conn.transaction():
            await on_ticket_event(DESKS, lambda: NOW)(conn, envelope, decode_event(envelope))


@pytest.fixture
async def sla(database_url: str) -> AsyncIterator[tuple[dict[str, str], httpx.AsyncClient]]:
    """sla's API at `NOW` over six requests; their keys by name."""
    told = stories()
    async with service_store(database_url, "sla") as pool:
        for events in told.values():
            await receive_all(pool, events)
        app = create_app(pool, DESKS, lambda: NOW, verifier=verifier("sla"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://sla", headers=STAFF
        ) as http:
            yield {name: f"SPT-{n}" for n, name in enumerate(told, start=1)}, http


async def keys_of(http: httpx.AsyncClient, **params: Any) -> list[str]:
    answer = await http.get("/queue", params={"policy_id": "erp-vendor", **params})
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert int(answer.headers["x-total-count"]) >= len(rows)
    return [row["key"] for row in rows]


async def test_the_queue_sorts_by_business_time_left_paused_clocks_last(
    sla: tuple[dict[str, str], httpx.AsyncClient],
) -> None:
    keys, http = sla
    answer = await http.get("/queue", params={"policy_id": "erp-vendor"})
    assert answer.status_code == 200, answer.text
    rows = {row["key"]: row for row in answer.json()}
    order = [keys[n] for n in ("late", "soon", "qualified", "calm", "waiting")]
    assert list(rows) == order  # not the closed one
    assert answer.headers["x-total-count"] == "5"
    soon = rows[keys["soon"]]
    assert soon["business_time_left_s"] == 10 * 60  # 60 business minutes, 50 gone
    assert soon["response"]["state"] == "running"
    assert soon["response"]["due"] == "2026-03-02T15:00:00Z"
    assert soon["response"]["warning"] == "2026-03-02T14:45:00Z"
    assert soon["subject"] == "Request 2" and soon["expected_actor"] == "front_desk"
    assert soon["requester_id"] == "anne@acme.example" and soon["category"] == "open"
    assert rows[keys["late"]]["business_time_left_s"] < 0
    waiting = rows[keys["waiting"]]
    assert waiting["response"]["state"] == "stopped"
    assert waiting["resolution"]["state"] == "paused"
    assert waiting["resolution"]["reason"].startswith("paused: Waiting for customer")
    assert waiting["resolution"]["due"] is None
    assert waiting["business_time_left_s"] == 1440 * 60  # high: all its resolution time left
    assert rows[keys["qualified"]]["assignee_id"] == PAUL


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"category": "waiting"}, ["waiting"]),
        ({"category": "open"}, ["late", "soon", "qualified", "calm"]),
        ({"status": "qualified"}, ["qualified"]),
        ({"status": ["open", "qualified"]}, ["late", "soon", "qualified", "calm"]),
        ({"status": "closed"}, []),  # the category comes first: active
        ({"expected_actor": "front_desk"}, ["late", "soon", "calm"]),
        ({"expected_actor": "requester"}, ["waiting"]),
        ({"assignee": PAUL}, ["qualified"]),
        ({"assignee": PAUL.upper()}, ["qualified"]),
        ({"unassigned": "true"}, ["late", "soon", "calm", "waiting"]),
        ({"due": "breached"}, ["late"]),
        ({"due": "soon"}, ["soon"]),
        ({"limit": 2, "offset": 1}, ["soon", "qualified"]),
        ({"offset": 100}, []),
    ],
)
async def test_the_queue_filters(
    sla: tuple[dict[str, str], httpx.AsyncClient], params: dict[str, Any], names: list[str]
) -> None:
    keys, http = sla
    assert await keys_of(http, **params) == [keys[n] for n in names]


async def test_the_total_counts_every_match_not_the_page(
    sla: tuple[dict[str, str], httpx.AsyncClient],
) -> None:
    _, http = sla
    answer = await http.get("/queue", params={"policy_id": "erp-vendor", "limit": 1})
    assert len(answer.json()) == 1 and answer.headers["x-total-count"] == "5"


async def test_the_counts_of_the_usual_queues_in_one_read(
    sla: tuple[dict[str, str], httpx.AsyncClient],
) -> None:
    _, http = sla
    answer = await http.get("/queue/counts", params={"policy_id": "erp-vendor", "assignee": PAUL})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "active": 5, "waiting": 1, "unassigned": 4, "assigned": 1, "breached": 1, "soon": 1,
        "by_status": {"open": 3, "qualified": 1, "waiting_customer": 1},
        "by_expected_actor": {"front_desk": 3, "daily": 1, "requester": 1},
    }  # fmt: skip


@pytest.mark.parametrize("path", ["/queue", "/queue/counts"])
@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Authorization": "Bearer "}, 401),
        (ANNE, 403),  # customers have no queues
        (AGENT_ELSEWHERE, 403),  # staff of another desk
        ({**STAFF, "X-Actor-Role": "daily"}, 403),  # a role not theirs
    ],
)
async def test_the_queues_are_for_the_support_side_of_the_desk(
    sla: tuple[dict[str, str], httpx.AsyncClient], path: str, headers: dict[str, str], status: int
) -> None:
    keys, http = sla
    answer = await http.get(path, params={"policy_id": "erp-vendor"}, headers=headers)
    assert answer.status_code == status, answer.text
    assert keys["soon"] not in answer.text


async def test_an_unknown_desk_is_404(sla: tuple[dict[str, str], httpx.AsyncClient]) -> None:
    _, http = sla
    answer = await http.get("/queue", params={"policy_id": "nope"})
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no desk 'nope'"


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"policy_id": ""},
        {"policy_id": "x" * 101},
        {"category": "closed"},
        {"category": "all"},
        {"status": "Open"},
        {"status": "open; DROP TABLE clock_board"},
        {"status": [f"s{n}" for n in range(21)]},
        {"expected_actor": "x" * 65},
        {"assignee": "not an address"},
        {"assignee": PAUL, "unassigned": "true"},
        {"unassigned": "maybe"},
        {"due": "later"},
        {"limit": 0},
        {"limit": 201},
        {"limit": "1e3"},
        {"limit": "²"},
        {"offset": -1},
        {"offset": 100_001},
    ],
)
async def test_bad_parameters_are_422(
    sla: tuple[dict[str, str], httpx.AsyncClient], params: dict[str, Any]
) -> None:
    _, http = sla
    sent = {"policy_id": "erp-vendor", **params} if params else {}
    answer = await http.get("/queue", params=sent)
    assert answer.status_code == 422, answer.text


async def test_rows_written_before_the_queues_columns_are_completed(database_url: str) -> None:
    migrations = migrations_in("sla", resources.files("sla") / "migrations")
    schema = f"t_sla_{uuid.uuid4().hex[:8]}"
    before = await open_store(database_url, schema, [m for m in migrations if m.version < 5])
    try:
        event = created("7", "critical")
        (state,) = published_states([event], ERP)
        await record(before, state)
        await before.execute(
            """INSERT INTO clock_board (ticket_id, key, policy_id, priority, status,
                   response_state, response_due, next_due, version, organisation_id)
               VALUES ($1, $2, 'erp-vendor', 'critical', 'open', 'running', $3, $3, 1, 'acme')""",
            event.ticket_id,
            event.key,
            MONDAY + timedelta(hours=1),
        )
        after = await open_store(database_url, schema, migrations)
        try:
            row = await after.fetchrow("SELECT * FROM clock_board")
            assert row["subject"] == "Request 7" and row["category"] == "open"
            assert row["expected_actor"] == "front_desk" and row["created_at"] == MONDAY
            assert row["remaining_s"] is None and row["next_warning"] is None
            assert await complete_board(after, DESKS, NOW) == 1
            row = await after.fetchrow("SELECT * FROM clock_board")
            assert row["next_warning"] == MONDAY + timedelta(minutes=45)
            assert row["remaining_s"] == 10 * 60
            assert await complete_board(after, DESKS, NOW) == 0
        finally:
            await after.close()
    finally:
        await before.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await before.close()
