"""Record what an event means for whom, worded and threaded, in the consumer's transaction.

Whom to tell and the words come from the request as workflow published it with the event (its
`RequestState`): the notifier keeps no view of the requests of its own.

Each message is a `deliveries` row keyed by (event id, recipient), written before anything is
sent (the sender in `application.delivery` marks it after): the words are rendered once here,
so a re-send after a crash is the same message with the same Message-ID. Each message to a
person answers the previous one we sent them about the request, back to the mail that created
it. Automatic answers to refused inbound mail are recorded the same way, once per request event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.mail import AutomaticReplyRequested
from desk_contracts.state import RequestState
from desk_contracts.tickets import StatusChanged, TicketClosed
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.directory import Directory, DirectorySource, current_directory
from desk_policies.model import DeskPolicy
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
        )
        return f"{self.portal_url.rstrip('/')}/survey/{make_token(self.survey_secret, claim)}"


def closes(event: Event, ticket: RequestState) -> bool:
    """Whether `event` closed the request: an agent's closing, or a change of status that
    leaves it closed (a requester confirming a resolution, where the desk closes it then)."""
    if isinstance(event, TicketClosed):
        return True
    moved = isinstance(event, StatusChanged) and event.from_status != event.to_status
    return moved and ticket.category == "closed"


async def _previous(conn: asyncpg.Connection, ticket_id: str, recipient: str) -> list[str]:
    rows = await conn.fetch(
        """SELECT message_id FROM deliveries
           WHERE ticket_id = $1 AND recipient = $2 AND kind = 'notification' ORDER BY seq""",
        ticket_id,
        recipient,
    )
    return [row["message_id"] for row in rows]


async def record_notifications(
    conn: asyncpg.Connection,
    envelope: Envelope,
    event: Event,
    ticket: RequestState,
    notifier: Notifier,
) -> int:
    """Record the messages `event` causes (none twice), addressed from `ticket`, the request as
    published with the event; returns how many rules produced."""
    policy = notifier.policies[ticket.policy_id]
    directory = notifier.directory_now()
    notes = notifications_for(event, ticket, policy, directory)
    for note in notes:
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
        chain = thread(
            ticket.source_message_id, await _previous(conn, ticket.ticket_id, note.recipient)
        )
        await conn.execute(
            """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                       in_reply_to, reference_ids, subject, body, html, language,
                                       auto_submitted, sender, kind)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'notification')
               ON CONFLICT DO NOTHING""",
            f"{envelope.id}/{note.recipient}",
            envelope.id,
            ticket.ticket_id,
            note.recipient,
            message_id(ticket.ticket_id, envelope.id, note.recipient, notifier.mail_domain),
            chain.in_reply_to,
            list(chain.references),
            words.subject,
            words.text,
            words.html,
            note.language,
            AUTO_GENERATED,
            policy.email_intake.support_address,  # replies go to the desk's gateway address
        )
    if notes:
        log.info("notifications_recorded", recipients=[n.recipient for n in notes])
    return len(notes)


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
    await conn.execute(
        """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                   in_reply_to, reference_ids, subject, body, html, language,
                                   auto_submitted, sender, kind)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'automatic_reply')
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
    )
    log.info("automatic_reply_recorded", to=request.to, reason=request.reason.value)
