"""Record what an event means for whom, worded and threaded, in the consumer's transaction.

Whom to tell and the words come from the request as workflow published it with the event (its
`RequestState`): the notifier folds no view of the requests of its own. (For the SLA events,
which carry no state, it is the latest one published, kept as the ticket events passed:
`application.request_states`, `application.sla_events`.)

Each message is a `deliveries` row keyed by (event id, recipient), written before anything is
sent (the sender in `application.delivery` marks it after): the words are rendered once here,
so a re-send after a crash is the same message with the same Message-ID. Each message to a
person answers the previous one we sent them about the request, back to the mail that created
it. Automatic answers to refused inbound mail are recorded the same way, once per request event.
Each row keeps the desk (policy id) it is about, and each message rendered is told to the
notifier's meter (`notifier.application.meter`), by desk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.mail import AutomaticReplyRequested
from desk_contracts.state import RequestState
from desk_contracts.tickets import StatusChanged, TicketClosed
from desk_eventstore.tracecontext import TRACEPARENT
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.directory import Directory, DirectorySource, current_directory
from desk_policies.model import DeskPolicy
from notifier.application.meter import UNMETERED, NotificationMeter
from notifier.domain.content import Renderer, automatic_reply_context, notification_context
from notifier.domain.rules import LANGUAGES, Notification, notifications_for
from notifier.domain.threading import automatic_reply_id, message_id, thread

log = structlog.get_logger(__name__)

AUTO_GENERATED = "auto-generated"  # RFC 3834: our notices
AUTO_REPLIED = "auto-replied"  # RFC 3834: answers to a message we received


@dataclass(frozen=True)
class Notifier:
    """Everything the recording needs: desks, people, words, and how links are made."""

    policies: dict[str, DeskPolicy]
    directory: DirectorySource  # a fixed one, or what gives the current one (the feed's)
    templates: Renderer
    mail_domain: str
    portal_url: str = "http://127.0.0.1:8000"  # where people answer surveys and read requests
    survey_secret: str = ""
    survey_valid_days: int = 30
    meter: NotificationMeter = UNMETERED  # told of each message rendered

    def directory_now(self) -> Directory:
        """The directory as it is now (asked once for each event)."""
        return current_directory(self.directory)

    def survey_url(self, event: Event, ticket: RequestState, note: Notification) -> str | None:
        policy = self.policies[ticket.policy_id]
        if not (policy.survey.enabled and closes(event, ticket) and self.survey_secret):
            return None
        claim = SurveyClaim(
            ticket_id=ticket.ticket_id,
            key=ticket.key,
            policy_id=ticket.policy_id,
            respondent=note.recipient,
            language=note.language,
            expires_at=event.occurred_at + timedelta(days=self.survey_valid_days),
            test_clock=ticket.test_clock,
        )
        return f"{self.portal_url.rstrip('/')}/survey/{make_token(self.survey_secret, claim)}"


def closes(event: Event, ticket: RequestState) -> bool:
    """Whether `event` closed the request: an agent's closing, or a change of status that
    leaves it closed (a requester confirming a resolution, where the desk closes it then)."""
    if isinstance(event, TicketClosed):
        return True
    moved = isinstance(event, StatusChanged) and event.from_status != event.to_status
    return moved and ticket.category == "closed"


async def record_notifications(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: Event,
    ticket: RequestState,
    notifier: Notifier,
) -> int:
    """Record the messages `event` causes (none twice), addressed from `ticket`, the request as
    published with the event; returns how many rules produced."""
    return await record_all_notifications(conn, [(envelope, event, ticket)], notifier)


async def record_all_notifications(
    conn: asyncpg.Connection,
    events: Sequence[tuple[Envelope, Event, RequestState]],
    notifier: Notifier,
) -> int:
    """`record_notifications` for each of `events` (with its request as published), in their
    order, with two statements for all: each message threaded after those recorded before it,
    in this call too. Returns how many rules produced."""
    planned = []
    for envelope, event, ticket in events:
        policy = notifier.policies[ticket.policy_id]
        directory = notifier.directory_now()
        for note in notifications_for(event, ticket, policy, directory):
            context = notification_context(
                note,
                event,
                ticket,
                policy,
                directory,
                notifier.survey_url(event, ticket, note),
                notifier.portal_url,
            )
            words = notifier.templates.render(note.template, note.language, context, ticket.key)
            notifier.meter.rendered(policy.id)
            planned.append((envelope, ticket, policy, note, words))
    if not planned:
        return 0
    sent, taken = await _threads(conn, {(p[1].ticket_id, p[3].recipient) for p in planned})
    rows = []
    for envelope, ticket, policy, note, words in planned:
        key = f"{envelope.id}/{note.recipient}"
        if key in taken:  # recorded before: nothing twice
            continue
        taken.add(key)
        earlier = sent.setdefault((ticket.ticket_id, note.recipient), [])
        chain = thread(ticket.source_message_id, earlier)
        new_id = message_id(ticket.ticket_id, envelope.id, note.recipient, notifier.mail_domain)
        earlier.append(new_id)
        rows.append(
            (
                key,
                envelope.id,
                ticket.ticket_id,
                note.recipient,
                new_id,
                chain.in_reply_to,
                list(chain.references),
                words.subject,
                words.text,
                words.html,
                note.language,
                AUTO_GENERATED,
                policy.email_intake.support_address,  # replies go to the desk's gateway address
                policy.id,
                envelope.extensions.get(TRACEPARENT),  # its sending joins the event's trace
            )
        )
    await conn.executemany(
        """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                   in_reply_to, reference_ids, subject, body, html, language,
                                   auto_submitted, sender, policy_id, traceparent, kind)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                   'notification')
           ON CONFLICT DO NOTHING""",
        rows,
    )
    told: dict[str, list[str]] = {}  # event id -> recipients, in the events' order
    for envelope, _, _, note, _ in planned:
        told.setdefault(envelope.id, []).append(note.recipient)
    for event_id, recipients in told.items():
        log.info("notifications_recorded", event_id=event_id, recipients=recipients)
    return len(planned)


async def _threads(
    conn: asyncpg.Connection, pairs: set[tuple[str, str]]
) -> tuple[dict[tuple[str, str], list[str]], set[str]]:
    """For each (ticket, recipient) of `pairs`: the Message-IDs of the notifications sent
    them about it, oldest first; and the delivery keys already recorded for any of them."""
    rows = await conn.fetch(
        """SELECT d.ticket_id, d.recipient, d.message_id, d.kind, d.delivery_key
           FROM deliveries AS d JOIN unnest($1::text[], $2::text[]) AS p(ticket_id, recipient)
               ON d.ticket_id = p.ticket_id AND d.recipient = p.recipient
           ORDER BY d.seq""",
        [ticket_id for ticket_id, _ in pairs],
        [recipient for _, recipient in pairs],
    )
    sent: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row["kind"] == "notification":
            sent.setdefault((row["ticket_id"], row["recipient"]), []).append(row["message_id"])
    return sent, {row["delivery_key"] for row in rows}


async def record_automatic_reply(
    conn: asyncpg.Connection,
    envelope: Envelope,
    request: AutomaticReplyRequested,
    notifier: Notifier,
) -> None:
    """Record the answer to a refused inbound message (once per request event)."""
    policy = notifier.policies.get(request.policy_id)
    language = notifier.directory_now().language_of(request.to, default=request.language)
    language = language if language in LANGUAGES else "en"
    context = automatic_reply_context(request, policy, language)
    key = request.ticket_key
    if key and f"[{key}]" in request.original_subject:
        key = None  # already in the subject we answer
    words = notifier.templates.render(f"refusal_{request.reason.value}", language, context, key)
    desk = policy.id if policy else None  # a desk we know, never what the request says
    notifier.meter.rendered(desk)
    await conn.execute(
        """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                   in_reply_to, reference_ids, subject, body, html, language,
                                   auto_submitted, sender, policy_id, traceparent, kind)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
                   'automatic_reply')
           ON CONFLICT DO NOTHING""",
        f"{envelope.id}/{request.to}",
        envelope.id,
        request.ticket_id,
        request.to,
        automatic_reply_id(envelope.id, request.to, notifier.mail_domain),
        request.original_message_id,
        [request.original_message_id] if request.original_message_id else [],
        words.subject,
        words.text,
        words.html,
        language,
        AUTO_REPLIED,
        policy.email_intake.support_address if policy else None,
        desk,
        envelope.extensions.get(TRACEPARENT),
    )
    log.info("automatic_reply_recorded", to=request.to, reason=request.reason.value)
