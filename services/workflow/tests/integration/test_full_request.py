"""A request whose stream is full, on the real PostgreSQL server: people's commands are refused
(HTTP 409 with what to do; a forwarded mail reply logged and not retried), the desk's own
commands (a reminder, a failed delivery) are still recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from desk_servers import envelope_of
from identity_support import bearer, verifier
from service_support import service_store
from structlog.testing import capture_logs

from desk_contracts.base import Event
from desk_contracts.requests import CommentReceived, DeliveryFailed
from desk_contracts.sla import ReminderDue
from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore import store
from desk_eventstore.store import read_stream
from desk_policies.loader import load_policies
from workflow.adapters.http import create_app
from workflow.adapters.kafka import on_command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = bearer("paul@partner.example", audience="workflow", roles={"cloud-partner": ["agent"]})


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


async def forward(pool: asyncpg.Pool, event: Event, source: str, now: datetime = NOW) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await on_command(POLICIES, lambda: now)(conn, envelope_of(event, source), event)


async def full_request(pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> TicketCreated:
    """A request waiting for its requester, whose stream holds as many events as allowed."""
    created = TicketCreated(
        ticket_id=str(uuid.uuid4()), occurred_at=NOW, key=f"SUP-{uuid.uuid4().int % 10**6}",
        policy_id="cloud-partner", request_type="support", priority="high",
        subject="Jira is slow", description="Since the upgrade", organisation_id="acme",
        requester_id="anne@acme.example", created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await on_command(POLICIES, lambda: NOW)(conn, envelope_of(created, "/desk/intake"), created)
    app = create_app(pool, POLICIES, lambda: NOW, verifier=verifier("workflow"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as http:
        assert (await http.post(f"/requests/{created.key}/start-work", headers=AGENT)).is_success
        asked = await http.post(
            f"/requests/{created.key}/request-information",
            json={"comment": "Which add-on version?"},
            headers=AGENT,
        )
        assert asked.status_code == 200, asked.text
        monkeypatch.setattr(store, "MAX_STREAM_EVENTS", asked.json()["version"])
        refused = await http.post(
            f"/requests/{created.key}/add-comment", json={"body": "More?"}, headers=AGENT
        )
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        f"request {created.key} has reached its size limit: "
        f"open a new request that references {created.key}"
    )
    return created


async def test_a_mail_reply_to_a_full_request_is_logged_not_retried(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await full_request(pool, monkeypatch)
    reply = CommentReceived(
        ticket_id=created.ticket_id, occurred_at=NOW, author_id="anne@acme.example",
        author_role="requester", organisation_id="acme", body="Version 4.2",
        source_message_id="<r1@acme.example>",
    )  # fmt: skip
    with capture_logs() as logs:
        await forward(pool, reply, "/desk/intake")  # no exception: not dead-lettered, not retried
    async with pool.acquire() as conn:
        assert len(await read_stream(conn, created.ticket_id)) == store.MAX_STREAM_EVENTS
    (refused,) = [entry for entry in logs if entry["event"] == "forwarded_command_refused"]
    assert "has reached its size limit" in refused["reason"]


async def test_the_desk_s_own_commands_are_recorded_on_a_full_request(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await full_request(pool, monkeypatch)
    version = store.MAX_STREAM_EVENTS
    later = NOW + timedelta(days=4)
    reminder = ReminderDue(
        ticket_id=created.ticket_id, occurred_at=later, armed_version=version, due_at=later,
        days_waiting=3,
    )  # fmt: skip
    failed = DeliveryFailed(
        ticket_id=created.ticket_id, occurred_at=later, recipient="gone@acme.example",
        message_id="<m@desk.example>", notified_event_id=str(uuid.uuid4()),
        error="550 no such user",
    )  # fmt: skip
    await forward(pool, reminder, "/desk/sla", later)
    await forward(pool, failed, "/desk/notifier", later)
    async with pool.acquire() as conn:
        stream = await read_stream(conn, created.ticket_id)
    assert [r.event_type for r in stream[version:]] == ["ReminderSent", "NotificationFailed"]
