"""The notifier over real SMTP on loopback (aiosmtpd) and the real PostgreSQL server:
recorded before sending, marked after; transient errors retried later, permanent ones kept."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from service_support import service_store
from system import free_port

from desk_contracts.envelope import Envelope
from desk_contracts.tickets import Channel, TicketCreated
from desk_policies.loader import load_policies
from notifier.application.notify import record_notifications, send_pending

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # when the request was made


def now() -> datetime:  # when the sender runs: rows are due from the moment they are recorded
    return datetime.now(UTC)


class Sink:
    def __init__(self) -> None:
        self.received: list[email.message.EmailMessage] = []
        self.refuse_with: str | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_with:
            return self.refuse_with
        self.received.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler, port = Sink(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "notifier") as pool:
        yield pool


async def record_creation(pool: asyncpg.Pool, policy: str, channel: Channel) -> TicketCreated:
    event = TicketCreated(
        ticket_id=str(uuid.uuid4()),
        occurred_at=NOW,
        key="REQ-1001",
        policy_id=policy,
        request_type="information_request" if policy == "saas-desk" else "support",
        priority="low",
        subject="Question",
        description="How do I export?",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=channel,
        language="en",
        source_message_id="<first@acme.example>",
    )
    envelope = Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source="/desk/intake",
        subject=event.ticket_id,
        time=NOW,
        data=event.model_dump(mode="json"),
    )
    async with pool.acquire() as conn, conn.transaction():
        await record_notifications(conn, envelope, event, POLICIES, "desk.example")
        await record_notifications(conn, envelope, event, POLICIES, "desk.example")  # twice
    return event


async def test_the_acknowledgement_is_sent_once_threaded_and_marked(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    await record_creation(pool, "saas-desk", Channel.EMAIL)
    assert await send_pending(pool, "127.0.0.1", port, "support@desk.example", now()) == 1
    assert await send_pending(pool, "127.0.0.1", port, "support@desk.example", now()) == 0
    assert len(handler.received) == 1
    mail = handler.received[0]
    assert mail["Subject"].startswith("[REQ-1001] Request received")
    assert mail["In-Reply-To"] == "<first@acme.example>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert "Reply to this e-mail" in mail.get_content()
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT status FROM deliveries") == "sent"


async def test_portal_creation_does_not_mail_the_creator_in_cloud_partner(
    pool: asyncpg.Pool,
) -> None:
    await record_creation(pool, "cloud-partner", Channel.PORTAL)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 0


async def test_relay_down_is_retried_later_and_a_5xx_is_kept_as_failed(
    pool: asyncpg.Pool, sink: tuple[Sink, int]
) -> None:
    handler, port = sink
    await record_creation(pool, "saas-desk", Channel.EMAIL)
    closed = free_port()
    assert await send_pending(pool, "127.0.0.1", closed, "support@desk.example", now()) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] > now() and row["last_error"]

    handler.refuse_with = "550 mailbox unavailable"
    later = row["next_attempt_at"]
    assert await send_pending(pool, "127.0.0.1", port, "support@desk.example", later) == 1
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM deliveries")
    assert row["status"] == "failed"
    assert row["last_error"].startswith("550")
    assert await send_pending(pool, "127.0.0.1", port, "support@desk.example", later) == 0
