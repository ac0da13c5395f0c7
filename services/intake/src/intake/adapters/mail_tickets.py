"""The gateway's view of the requests, kept from `ticket-events` in intake's schema: enough to
thread a reply (key, ticket id, the Message-ID that opened it) and to check who may answer."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.tickets import ParticipantAdded, StatusChanged, TicketCreated
from desk_platform.consumer import Handler
from desk_policies.model import DeskPolicy
from intake.domain.mail import References, TicketView


def on_ticket_event(policies: Mapping[str, DeskPolicy]) -> Handler:
    """Consumer of `ticket-events` (TicketCreated arrives from intake and again from workflow)."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if isinstance(event, TicketCreated):
            await conn.execute(
                """INSERT INTO mail_tickets (ticket_id, key, policy_id, requester_id,
                       organisation_id, participants, source_message_id)
                   VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (ticket_id) DO NOTHING""",
                event.ticket_id,
                event.key,
                event.policy_id,
                event.requester_id.lower(),
                event.organisation_id,
                [p.lower() for p in event.participants],
                event.source_message_id.lower() if event.source_message_id else None,
            )
        elif isinstance(event, StatusChanged):
            policy_id = await conn.fetchval(
                "SELECT policy_id FROM mail_tickets WHERE ticket_id = $1", event.ticket_id
            )
            policy = policies.get(policy_id) if policy_id else None
            if policy is not None:
                await conn.execute(
                    "UPDATE mail_tickets SET closed = $2 WHERE ticket_id = $1",
                    event.ticket_id,
                    event.to_status in policy.closed_statuses,
                )
        elif isinstance(event, ParticipantAdded):
            await conn.execute(
                """UPDATE mail_tickets SET participants = array_append(participants, $2)
                   WHERE ticket_id = $1 AND NOT ($2 = ANY(participants))""",
                event.ticket_id,
                event.participant_id.lower(),
            )

    return handle


async def tickets_for(conn: asyncpg.Connection, refs: References) -> list[TicketView]:
    """The requests a message may refer to (by key, by our Message-ID, by the opening mail)."""
    if not refs:
        return []
    rows = await conn.fetch(
        """SELECT * FROM mail_tickets
           WHERE key = ANY($1::text[]) OR ticket_id = ANY($2::text[])
              OR source_message_id = ANY($3::text[])""",
        list(refs.keys),
        list(refs.ticket_ids),
        list(refs.message_ids),
    )
    return [
        TicketView(
            ticket_id=row["ticket_id"],
            key=row["key"],
            policy_id=row["policy_id"],
            requester_id=row["requester_id"],
            organisation_id=row["organisation_id"],
            participants=frozenset(row["participants"]),
            closed=row["closed"],
            source_message_id=row["source_message_id"],
        )
        for row in rows
    ]
