"""A request at any instant, and its audit, on the real PostgreSQL server.

One request's history is built through the real commands, each at its own instant (an hour
apart); reading it `as_of` instants between events, exactly at an event's time and before its
creation gives what was computed here by hand, for the support side and for its requester
(who never reads the internal note), and nothing for another organisation. The audit lists the
same history field by field, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import envelope_of
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.tickets import Channel, TicketCreated
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import on_command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # the request is created
HOUR = timedelta(hours=1)
AGENT = bearer("paul@partner.example", audience="workflow", roles={"cloud-partner": ["agent"]})
LEAD = bearer("lea@desk.example", audience="workflow", roles={"cloud-partner": ["team_lead"]})
ANNE = bearer("anne@acme.example", audience="workflow", organisation="acme")
CARLA = bearer("carla@globex.example", audience="workflow", organisation="globex")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


def client(pool: asyncpg.Pool, now: datetime) -> httpx.AsyncClient:
    """Workflow's API whose clock says `now` (what each command's event records)."""
    app = create_app(pool, POLICIES, lambda: now, verifier=verifier("workflow"))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://workflow", headers=AGENT)


async def history(pool: asyncpg.Pool) -> TicketCreated:
    """A cloud-partner request of acme's, then, an hour apart each: work started (T1), the
    priority lowered with a reason (T2), assigned to Léa (T3), an internal note (T4), Bruno
    added as participant (T5)."""
    created = TicketCreated(
        ticket_id=str(uuid.uuid4()), occurred_at=T0, key=f"SUP-{uuid.uuid4().int % 10**7}",
        policy_id="cloud-partner", request_type="support", priority="high",
        subject="Jira is slow", description="Since the upgrade", organisation_id="acme",
        requester_id="anne@acme.example", created_by="anne@acme.example",
        channel=Channel.PORTAL, product_version="=2+3",
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await on_command(POLICIES, lambda: T0)(conn, envelope_of(created), created)
    steps: list[tuple[str, dict[str, Any]]] = [
        ("start-work", {}),
        ("change-priority", {"priority": "low", "reason": "a workaround exists"}),
        ("assign", {"assignee_id": "lea@desk.example"}),
        ("add-comment", {"body": "customer's add-on is outdated", "public": False}),
        ("add-participant", {"participant_id": "bruno@acme.example"}),
    ]
    for hours, (command, body) in enumerate(steps, start=1):
        async with client(pool, T0 + hours * HOUR) as http:
            done = await http.post(f"/requests/{created.key}/{command}", json=body)
            assert done.status_code == 200, done.text
    return created


def facts(read: dict[str, Any]) -> tuple[Any, ...]:
    """What a past view says: status, priority, assignee, participants, history (types,
    newest first) and version."""
    types = [entry["type"] for entry in read["history"]]
    return (
        read["status"]["id"], read["priority"], read.get("assignee_id"), read["participants"],
        types, read["version"],
    )  # fmt: skip


async def test_a_request_reads_as_it_was_at_each_instant(pool: asyncpg.Pool) -> None:
    created = await history(pool)
    path = f"/requests/{created.key}"
    async with client(pool, T0 + 6 * HOUR) as http:

        async def as_of(at: datetime, headers: dict[str, str] = AGENT) -> httpx.Response:
            return await http.get(path, params={"as_of": at.isoformat()}, headers=headers)

        before = await as_of(T0 - timedelta(seconds=1))
        assert before.status_code == 404
        at_creation = await as_of(T0)
        assert at_creation.status_code == 200, at_creation.text
        assert "ETag" not in at_creation.headers  # no command acts on the past
        assert facts(at_creation.json()) == ("submitted", "high", None, [], ["TicketCreated"], 1)
        assert at_creation.json()["as_of"] == "2026-03-02T09:00:00Z"
        between = await as_of(T0 + 1.5 * HOUR)
        assert facts(between.json()) == (
            "in_progress", "high", None, [], ["WorkStarted", "TicketCreated"], 2
        )  # fmt: skip
        lowered = await as_of(T0 + 2 * HOUR)  # exactly when the priority was lowered
        assert facts(lowered.json()) == (
            "in_progress", "low", None, [], ["PriorityChanged", "WorkStarted", "TicketCreated"], 3
        )  # fmt: skip
        assert lowered.json()["history"][0]["data"]["reason"] == "a workaround exists"
        noted = await as_of(T0 + 4.5 * HOUR)
        assert facts(noted.json()) == (
            "in_progress", "low", "lea@desk.example", [],
            ["CommentAdded", "TicketAssigned", "PriorityChanged", "WorkStarted", "TicketCreated"],
            5,
        )  # fmt: skip
        paris = await as_of((T0 + 4.5 * HOUR).astimezone(timezone(HOUR)))  # told otherwise
        assert facts(paris.json()) == facts(noted.json())

        # the requester reads the same past without the internal note nor the assignee
        anne = await as_of(T0 + 4.5 * HOUR, ANNE)
        assert anne.status_code == 200, anne.text
        seen = anne.json()
        assert [e["type"] for e in seen["history"]] == [
            "TicketAssigned", "PriorityChanged", "WorkStarted", "TicketCreated"
        ]  # fmt: skip
        assert "assignee_id" not in seen and seen["history_total"] == 4
        assert "assignee_id" not in seen["history"][0]["data"]
        assert (await as_of(T0 + 4.5 * HOUR, CARLA)).status_code == 404  # another organisation

        # an instant still to come reads the request as it is now
        later = await as_of(T0 + 1000 * HOUR)
        now = await http.get(path)
        assert later.json()["as_of"] == "2026-03-02T15:00:00Z"
        assert facts(later.json()) == facts(now.json())
        assert later.json()["participants"] == ["bruno@acme.example"]


@pytest.mark.parametrize(
    "as_of",
    [
        "2026-03-02T10:00:00",  # naive: read where?
        "yesterday",
        "1900-01-01T00:00:00+00:00",
        "99999-01-01T00:00:00+00:00",
        "2026-03-02T10:00:00+25:00",
        "2026-02-30T10:00:00Z",
        "2" * 100,
    ],
)
async def test_an_instant_that_is_not_one_is_refused(pool: asyncpg.Pool, as_of: str) -> None:
    async with client(pool, T0) as http:
        answer = await http.get("/requests/SUP-1", params={"as_of": as_of})
    assert answer.status_code == 422
    assert as_of not in answer.text  # a refusal never echoes the input


async def test_the_audit_tells_who_changed_what_when_and_why(pool: asyncpg.Pool) -> None:
    created = await history(pool)
    path = f"/requests/{created.key}/audit"
    async with client(pool, T0 + 6 * HOUR) as http:
        audit = await http.get(path)
        as_csv = await http.get(path, headers={**AGENT, "Accept": "text/csv"})
        by_format = await http.get(path, params={"format": "csv"})
        anne = await http.get(path, headers=ANNE)
        carla = await http.get(path, headers=CARLA)
    assert audit.status_code == 200, audit.text
    rows = [(r["version"], r["field"], r["old"], r["new"], r["actor_id"]) for r in audit.json()]
    assert rows == [
        (1, "status", None, "submitted", "anne@acme.example"),
        (1, "priority", None, "high", "anne@acme.example"),
        (1, "product_version", None, "=2+3", "anne@acme.example"),
        (2, "status", "submitted", "in_progress", "paul@partner.example"),
        (3, "priority", "high", "low", "paul@partner.example"),
        (4, "assignee_id", None, "lea@desk.example", "paul@partner.example"),
        (6, "participants", None, "bruno@acme.example", "paul@partner.example"),
    ]
    lowered = audit.json()[4]
    assert lowered["reason"] == "a workaround exists"
    assert lowered["occurred_at"] == (T0 + 2 * HOUR).isoformat()
    assert lowered["event"] == "PriorityChanged" and lowered["actor_role"] == "agent"
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == by_format.text
    assert f'filename="{created.key}-audit.csv"' in as_csv.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(as_csv.text)))
    assert table[0][:3] == ["key", "version", "occurred_at"]
    assert table[3][6:9] == ["product_version", "", "'=2+3"]  # no formula runs in a spreadsheet
    assert len(table) == 1 + len(rows)
    assert anne.status_code == 403  # the requester reads the request, not its audit
    assert carla.status_code == 404  # another organisation learns nothing of it


async def test_a_desk_s_audit_is_its_leads_for_a_bounded_period(pool: asyncpg.Pool) -> None:
    created = await history(pool)
    path = "/desks/cloud-partner/audit"
    period = {"from": (T0 + HOUR).isoformat(), "to": (T0 + 3 * HOUR).isoformat()}
    async with client(pool, T0 + 6 * HOUR) as http:
        audit = await http.get(path, params=period, headers=LEAD)
        one = await http.get(path, params={**period, "limit": 1}, headers=LEAD)
        as_csv = await http.get(path, params={**period, "format": "csv"}, headers=LEAD)
        agent = await http.get(path, params=period, headers=AGENT)
        anne = await http.get(path, params=period, headers=ANNE)
        too_long = {"from": T0.isoformat(), "to": (T0 + timedelta(days=94)).isoformat()}
        long = await http.get(path, params=too_long, headers=LEAD)
        backwards = {"from": period["to"], "to": period["from"]}
        reversed_ = await http.get(path, params=backwards, headers=LEAD)
        naive = await http.get(path, params={**period, "from": "2026-03-02T10:00"}, headers=LEAD)
        unknown = await http.get("/desks/nowhere/audit", params=period, headers=LEAD)
    assert audit.status_code == 200, audit.text
    rows = [(r["key"], r["version"], r["field"]) for r in audit.json()]
    assert rows == [(created.key, 2, "status"), (created.key, 3, "priority")]  # T3 excluded
    assert audit.headers["X-More-Rows"] == "false"
    assert len(one.json()) == 1 and one.headers["X-More-Rows"] == "true"
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "cloud-partner-audit-20260302-20260302.csv" in as_csv.headers["content-disposition"]
    assert (agent.status_code, anne.status_code) == (403, 403)
    assert (long.status_code, reversed_.status_code, naive.status_code) == (422, 422, 422)
    assert unknown.status_code == 404
