"""The notifier tells whom the directory names at the moment of each event, as its feed has it:
a team lead granted the role after the start is told of the next escalation, in their language,
and one whose role is revoked no longer is (real Kafka and PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from directory_support import directory_feed, until
from directory_topic import publish_directory
from published import published_envelopes
from service_support import service_store

from desk_contracts.directory import PersonInvited, Profile, RoleGranted, RoleRevoked
from desk_contracts.tickets import Channel, RequesterEscalated, TicketCreated
from desk_policies.directory import import_events, load_directory
from desk_policies.loader import load_policies
from notifier.adapters.kafka import on_ticket_event
from notifier.adapters.templates import Templates
from notifier.application.notify import Notifier

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICIES = load_policies()
NINA = "nina@desk.example"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "notifier") as pool:
        yield pool


async def escalation_told_to(pool: asyncpg.Pool, notifier: Notifier) -> dict[str, str]:
    """A new cloud-partner request escalated by its requester, as the consumer handles it:
    whom the escalation is told to, with the language of each message."""
    ticket = str(uuid.uuid4())
    events = [
        TicketCreated(
            ticket_id=ticket, occurred_at=NOW, key="REQ-1", policy_id="cloud-partner",
            request_type="support", priority="low", subject="Question", description="Why?",
            organisation_id="acme", requester_id="anne@acme.example",
            created_by="anne@acme.example", channel=Channel.PORTAL,
        ),
        RequesterEscalated(ticket_id=ticket, occurred_at=NOW, actor_id="anne@acme.example",
                           actor_role="requester", reason="Urgent"),
    ]  # fmt: skip
    envelopes = published_envelopes(events, POLICIES["cloud-partner"])
    handle = on_ticket_event(notifier)
    for envelope, event in zip(envelopes, events, strict=True):
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope, event)
    rows = await pool.fetch(
        "SELECT recipient, language FROM deliveries WHERE event_id = $1", envelopes[1].id
    )
    return {row["recipient"]: row["language"] for row in rows}


async def test_a_team_lead_named_after_the_start_is_told_of_the_next_escalation(
    pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    async with directory_feed(kafka_bootstrap, import_events(load_directory(), now=NOW)) as feed:
        notifier = Notifier(
            policies=POLICIES,
            directory=lambda: feed.current,
            templates=Templates(),
            mail_domain="desk.example",
        )
        before = await escalation_told_to(pool, notifier)
        assert before == {"lea@desk.example": "fr", "max@desk.example": "en"}

        lead = RoleGranted(occurred_at=NOW, by="max@desk.example", email=NINA,
                           desk_id="cloud-partner", role="team_lead")  # fmt: skip
        invited = PersonInvited(occurred_at=NOW, by="max@desk.example", email=NINA,
                                profile=Profile(name="Nina Lead", language="en"))  # fmt: skip
        await publish_directory(kafka_bootstrap, feed.topic, [invited, lead])
        await until(lambda: bool(feed.current.is_staff(NINA, "cloud-partner")))
        assert await escalation_told_to(pool, notifier) == {**before, NINA: "en"}

        revoked = RoleRevoked(occurred_at=NOW, by="max@desk.example", email=NINA,
                              desk_id="cloud-partner", role="team_lead")  # fmt: skip
        await publish_directory(kafka_bootstrap, feed.topic, [revoked])
        await until(lambda: not feed.current.is_staff(NINA, "cloud-partner"))
        assert await escalation_told_to(pool, notifier) == before
