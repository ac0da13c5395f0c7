"""Deliver recorded messages over SMTP: claim, send, mark; retry what may pass later.

A sender claims a batch of due rows by pushing their next attempt one lease ahead (so another
replica skips them, and a crashed sender's rows come due again), sends them over one SMTP
connection and marks each as sent right after the relay accepted it: after a crash only the
unsent ones go out again, with the same Message-ID, so a duplicate can only come from the
window between the relay's 250 and the mark, and is recognisable. A 4xx or a network error is
retried with exponential backoff; a 5xx (or too many attempts) fails the row for good and
records a `DeliveryFailed` command in the notifier's store, in the same transaction: its relay
publishes it to `ticket-commands` (key: the ticket id) and workflow shows it in the request's
history.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime
from typing import Any

import aiosmtplib
import asyncpg
import structlog

from desk_contracts.requests import DeliveryFailed
from desk_eventstore.records import NewEvent
from desk_eventstore.store import append

log = structlog.get_logger(__name__)
GIVE_UP_AFTER = timedelta(days=2)  # like an MTA: a relay outage of hours loses nothing
UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP  # readable in raw form, unlike base64
LEASE = timedelta(seconds=120)


@dataclass(frozen=True)
class Relay:
    """The SMTP relay the notifier sends through, and who the mail is from."""

    host: str
    port: int
    sender: str
    timeout: float = 10.0


def _text(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, UTF8_QP)
    return part


def _subject(subject: str) -> str:
    """RFC 2047 only where needed: the leading `[KEY]` stays readable in the raw header."""
    if subject.isascii():
        return subject
    first, _, rest = subject.partition(" ")
    if not (first.isascii() and rest):
        return Header(subject, "utf-8", header_name="Subject").encode()
    header = Header(first, "us-ascii", header_name="Subject")
    header.append(rest, "utf-8")  # Header puts the space back between the two
    return header.encode()


def build_message(row: Mapping[str, Any], sender: str, now: datetime) -> Message:
    """The mail of a recorded row: text with an HTML alternative, threaded, marked automatic.

    Built with the standard library's classic MIME classes: several times cheaper than
    `EmailMessage`'s header registry, for the same bytes on the wire (see bench/notify.py).
    """
    html = row["html"]
    message: Message = MIMEMultipart("alternative") if html else _text(row["body"], "plain")
    if html:
        message.attach(_text(row["body"], "plain"))
        message.attach(_text(html, "html"))
    subject = row["subject"]
    message["From"] = row["sender"] or sender
    message["To"] = row["recipient"]
    message["Subject"] = _subject(subject)
    message["Message-ID"] = row["message_id"]
    message["Date"] = format_datetime(now)
    if row["in_reply_to"]:
        message["In-Reply-To"] = row["in_reply_to"]
    if row["reference_ids"]:
        message["References"] = " ".join(row["reference_ids"])
    if row["auto_submitted"]:
        message["Auto-Submitted"] = row["auto_submitted"]
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"  # no out-of-office back
    message["Content-Language"] = row["language"]
    return message


class Sender:
    """Sends due rows of one store through one relay (any number of replicas may run)."""

    def __init__(self, pool: asyncpg.Pool, relay: Relay) -> None:
        self.pool = pool
        self.relay = relay

    async def claim(self, now: datetime, limit: int) -> list[asyncpg.Record]:
        rows = await self.pool.fetch(
            """UPDATE deliveries SET next_attempt_at = $2
               WHERE delivery_key IN (
                   SELECT delivery_key FROM deliveries
                   WHERE status = 'pending' AND next_attempt_at <= $1
                   ORDER BY next_attempt_at, seq LIMIT $3 FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            now,
            now + LEASE,
            limit,
        )
        return sorted(rows, key=lambda row: row["seq"])

    async def send_pending(self, now: datetime, limit: int = 50) -> int:
        """Send up to `limit` due messages; returns how many were attempted."""
        rows = await self.claim(now, limit)
        if not rows:
            return 0
        deadline = time.monotonic() + LEASE.total_seconds() / 2
        smtp: aiosmtplib.SMTP | None = None
        try:
            for n, row in enumerate(rows):
                if time.monotonic() > deadline:  # slow relay: let the rest come due again
                    await self._release([r["delivery_key"] for r in rows[n:]], now)
                    break
                try:
                    if smtp is None or not smtp.is_connected:
                        smtp = aiosmtplib.SMTP(
                            hostname=self.relay.host,
                            port=self.relay.port,
                            timeout=self.relay.timeout,
                        )
                        await smtp.connect()
                    await smtp.send_message(build_message(row, self.relay.sender, now))
                except aiosmtplib.SMTPRecipientsRefused as error:  # this recipient: final if 5xx
                    refused = error.recipients[0]
                    await self._failed(row, f"{refused.code} {refused.message}", refused.code, now)
                    continue
                except aiosmtplib.SMTPDataError as error:  # this message refused: final if 5xx
                    await self._failed(row, f"{error.code} {error.message}", error.code, now)
                    continue
                except aiosmtplib.SMTPResponseException as error:
                    # the relay refuses us (sender, authentication, relaying): every message
                    # would fail alike, so nothing is final; retry with backoff and say so
                    log.error(
                        "relay_refuses_us",
                        code=error.code,
                        error=error.message,
                        relay=f"{self.relay.host}:{self.relay.port}",
                    )
                    await self._failed(row, f"{error.code} {error.message}", None, now)
                    smtp = None
                    continue
                except (aiosmtplib.SMTPException, OSError) as error:
                    await self._failed(row, str(error) or type(error).__name__, None, now)
                    smtp = None
                    continue
                await self.mark_sent(row, now)
        finally:
            if smtp is not None and smtp.is_connected:
                try:
                    await smtp.quit()
                except (aiosmtplib.SMTPException, OSError):
                    smtp.close()
        return len(rows)

    async def mark_sent(self, row: asyncpg.Record, now: datetime) -> None:
        await self.pool.execute(
            """UPDATE deliveries SET status = 'sent', attempts = attempts + 1, sent_at = $2,
                                     last_error = NULL WHERE delivery_key = $1""",
            row["delivery_key"],
            now,
        )
        log.info(
            "notification_sent",
            ticket_id=row["ticket_id"],
            event_id=row["event_id"],
            recipient=row["recipient"],
            message_id=row["message_id"],
        )

    async def _release(self, keys: list[str], now: datetime) -> None:
        await self.pool.execute(
            "UPDATE deliveries SET next_attempt_at = $2 WHERE delivery_key = ANY($1)", keys, now
        )

    async def _failed(
        self, row: asyncpg.Record, error: str, code: int | None, now: datetime
    ) -> None:
        attempts = row["attempts"] + 1
        permanent = code is not None and 500 <= code < 600
        give_up = permanent or now - row["created_at"] > GIVE_UP_AFTER
        delay = timedelta(seconds=min(2**attempts, 600))
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """UPDATE deliveries SET status = $2, attempts = $3, last_error = $4,
                                         next_attempt_at = $5 WHERE delivery_key = $1""",
                row["delivery_key"],
                "failed" if give_up else "pending",
                attempts,
                error,
                now + delay,
            )
            if give_up and row["kind"] == "notification":
                await _report(conn, row, error, now)
        log.warning(
            "notification_not_sent",
            ticket_id=row["ticket_id"],
            event_id=row["event_id"],
            recipient=row["recipient"],
            error=error,
            permanent=permanent,
            gave_up=give_up,
        )


async def _report(conn: asyncpg.Connection, row: asyncpg.Record, error: str, now: datetime) -> None:
    """Append `DeliveryFailed` to the ticket's stream of the notifier's store (the outbox)."""
    ticket_id = row["ticket_id"]
    failed = DeliveryFailed(
        ticket_id=ticket_id,
        occurred_at=now,
        recipient=row["recipient"],
        message_id=row["message_id"],
        notified_event_id=row["event_id"],
        error=error[:500],
    )
    event_id = uuid.uuid5(uuid.NAMESPACE_URL, f"delivery-failed/{row['delivery_key']}")
    new = NewEvent.from_event(
        failed, event_id=event_id, metadata={"correlationid": row["event_id"]}
    )
    await append(conn, ticket_id, None, [new])  # at the stream's end, under the append lock
