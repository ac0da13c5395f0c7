"""Record what an event means for whom (in the consumer's transaction), deliver afterwards.

Each message is a `deliveries` row keyed by (event id, recipient) before anything is sent;
the sender marks it sent after the relay accepted it. After a crash only unsent rows go out,
with the same Message-ID, so a duplicate can only come from the crash window and is
recognisable. Transient SMTP errors retry with backoff; permanent ones (5xx) are kept as failed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.tickets import (
    NotificationsMuted,
    ParticipantAdded,
    TicketAssigned,
    TicketCreated,
)
from desk_policies.model import DeskPolicy
from notifier.domain.rules import TicketView, message_id, notifications_for
from notifier.domain.wording import render

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 8


async def _view(conn: asyncpg.Connection, ticket_id: str) -> TicketView | None:
    row = await conn.fetchrow("SELECT * FROM tickets WHERE ticket_id = $1", ticket_id)
    if row is None:
        return None
    values = dict(row)
    values["participants"] = tuple(values["participants"])
    values["muted"] = tuple(values["muted"])
    return TicketView(**values)


async def remember(conn: asyncpg.Connection, event: Event) -> None:
    """Keep the notifier's view of the request in step with its events."""
    if isinstance(event, TicketCreated):
        await conn.execute(
            """INSERT INTO tickets (ticket_id, key, policy_id, subject, requester_id, created_by,
                                    channel, language, participants, first_message_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING""",
            event.ticket_id,
            event.key,
            event.policy_id,
            event.subject,
            event.requester_id,
            event.created_by,
            event.channel.value,
            event.language,
            list(event.participants),
            event.source_message_id,
        )
    elif isinstance(event, ParticipantAdded):
        await conn.execute(
            """UPDATE tickets SET participants = array_append(participants, $2)
               WHERE ticket_id = $1 AND NOT $2 = ANY(participants)""",
            event.ticket_id,
            event.participant_id,
        )
    elif isinstance(event, NotificationsMuted):
        await conn.execute(
            "UPDATE tickets SET muted = array_append(muted, $2) WHERE ticket_id = $1",
            event.ticket_id,
            event.participant_id,
        )
    elif isinstance(event, TicketAssigned):
        await conn.execute(
            "UPDATE tickets SET assignee_id = $2 WHERE ticket_id = $1",
            event.ticket_id,
            event.assignee_id,
        )


async def record_notifications(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: Event,
    policies: dict[str, DeskPolicy],
    mail_domain: str,
) -> int:
    await remember(conn, event)
    ticket = await _view(conn, envelope.subject)
    if ticket is None:
        return 0
    policy = policies[ticket.policy_id]
    outcome = notifications_for(event, ticket, policy)
    if outcome.unresolved:
        log.warning("recipients_without_directory", roles=list(outcome.unresolved))
    for notification in outcome.notifications:
        subject, body = render(notification, event, ticket, policy)
        await conn.execute(
            """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                       in_reply_to, subject, body)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING""",
            f"{envelope.id}/{notification.recipient}",
            envelope.id,
            ticket.ticket_id,
            notification.recipient,
            message_id(envelope.id, notification.recipient, mail_domain),
            ticket.first_message_id,
            subject,
            body,
        )
    if outcome.notifications:
        log.info("notifications_recorded", recipients=[n.recipient for n in outcome.notifications])
    return len(outcome.notifications)


def build_message(row: asyncpg.Record, sender: str, now: datetime) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row["recipient"]
    message["Subject"] = row["subject"]
    message["Message-ID"] = row["message_id"]
    message["Date"] = format_datetime(now)
    if row["in_reply_to"]:
        message["In-Reply-To"] = row["in_reply_to"]
        message["References"] = row["in_reply_to"]
    if row["auto_submitted"]:
        message["Auto-Submitted"] = "auto-generated"
    message.set_content(row["body"])
    return message


async def send_pending(
    pool: asyncpg.Pool,
    smtp_host: str,
    smtp_port: int,
    sender: str,
    now: datetime,
    limit: int = 20,
) -> int:
    """Send up to `limit` due messages; returns how many were attempted."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at <= $1
               ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED""",
            now,
            limit,
        )
        for row in rows:
            await _send_one(conn, row, smtp_host, smtp_port, sender, now)
    return len(rows)


async def _send_one(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    host: str,
    port: int,
    sender: str,
    now: datetime,
) -> None:
    attempts = row["attempts"] + 1
    try:
        await aiosmtplib.send(build_message(row, sender, now), hostname=host, port=port, timeout=10)
    except aiosmtplib.SMTPResponseException as error:
        permanent = 500 <= error.code < 600
        await _failed(conn, row, attempts, f"{error.code} {error.message}", permanent, now)
        return
    except (aiosmtplib.SMTPException, OSError) as error:
        await _failed(conn, row, attempts, str(error) or type(error).__name__, False, now)
        return
    await conn.execute(
        "UPDATE deliveries SET status = 'sent', attempts = $2, sent_at = $3 "
        "WHERE delivery_key = $1",
        row["delivery_key"],
        attempts,
        now,
    )
    log.info(
        "notification_sent",
        ticket_id=row["ticket_id"],
        event_id=row["event_id"],
        recipient=row["recipient"],
        message_id=row["message_id"],
    )


async def _failed(
    conn: asyncpg.Connection,
    row: asyncpg.Record,
    attempts: int,
    error: str,
    permanent: bool,
    now: datetime,
) -> None:
    give_up = permanent or attempts >= MAX_ATTEMPTS
    delay = timedelta(seconds=min(2**attempts, 600))
    await conn.execute(
        """UPDATE deliveries SET status = $2, attempts = $3, last_error = $4,
                                 next_attempt_at = $5 WHERE delivery_key = $1""",
        row["delivery_key"],
        "failed" if give_up else "pending",
        attempts,
        error,
        now + delay,
    )
    log.warning(
        "notification_not_sent",
        ticket_id=row["ticket_id"],
        event_id=row["event_id"],
        recipient=row["recipient"],
        error=error,
        permanent=permanent,
        gave_up=give_up,
    )
