"""What a message template is given to word a notification (pure).

The templates (files, per language) decide the words; this module gathers the facts they need
in the recipient's language: the request, the event, labels of statuses, priorities and
resolutions from the policy, and how to answer (reply by mail, or the portal link, per policy;
the support team always works in the desk's portal). For an SLA warning or breach, `breach_at`
is when the clock breaches (or breached), in the recipient's time zone (else the desk's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from desk_contracts.base import Event
from desk_contracts.mail import AutomaticReplyRequested
from desk_contracts.sla import SlaBreached, SlaWarningReached
from desk_contracts.state import RequestState
from desk_contracts.tickets import PriorityChanged, StatusChanged, TicketClosed, TicketResolved
from desk_policies.audience import Audience, role_seen_by
from desk_policies.directory import Directory, Person
from desk_policies.model import DeskPolicy
from notifier.domain.rules import Notification


@dataclass(frozen=True)
class Rendered:
    """A message's words: one-line subject (with the request key), text and HTML bodies."""

    subject: str
    text: str
    html: str


class Renderer(Protocol):
    """Words a named message in a language from its variables (the templates adapter)."""

    def render(
        self, name: str, language: str, context: dict[str, Any], key: str | None
    ) -> Rendered: ...


def how_to_answer(policy: DeskPolicy, audience: Audience) -> str:
    """`reply` (answer this mail), `portal` (answer on the portal) or `team` (the desk's UI)."""
    if audience is Audience.SUPPORT:
        return "team"
    return "reply" if policy.email_replies.accepted else "portal"


def _labels(event: Event, policy: DeskPolicy, language: str) -> dict[str, str | None]:
    # every label a template may test is present (None when the event has none): templates are
    # strict, so a missing key would stop the message instead of leaving a phrase out
    labels: dict[str, str | None] = dict.fromkeys(
        ("status", "from_status", "priority", "from_priority", "resolution")
    )
    if isinstance(event, StatusChanged):
        for name, status_id in (("status", event.to_status), ("from_status", event.from_status)):
            try:
                labels[name] = policy.status(status_id).labels.get(language)
            except KeyError:
                labels[name] = status_id
    if isinstance(event, PriorityChanged):
        for priority in policy.priorities:
            if priority.id == event.from_priority:
                labels["from_priority"] = priority.labels.get(language)
            if priority.id == event.to_priority:
                labels["priority"] = priority.labels.get(language)
    if isinstance(event, SlaWarningReached | SlaBreached):
        for priority in policy.priorities:
            if priority.id == event.priority:
                labels["priority"] = priority.labels.get(language)
    if isinstance(event, TicketClosed | TicketResolved) and event.resolution_code:
        for code in policy.resolution_codes:
            if code.id == event.resolution_code:
                labels["resolution"] = code.labels.get(language)
    return labels


def breach_instant(event: Event, policy: DeskPolicy, person: Person | None) -> datetime | None:
    """When the SLA clock of `event` breaches (a warning) or breached (a breach), in the
    recipient's time zone, else the desk's; None for any other event."""
    if isinstance(event, SlaWarningReached):
        instant = event.breach_at
    elif isinstance(event, SlaBreached):
        instant = event.due_at
    else:
        return None
    zone = ZoneInfo(person.time_zone) if person and person.time_zone else policy.zone
    return instant.astimezone(zone)


def creator_seen_by(audience: Audience, ticket: RequestState, policy: DeskPolicy) -> str:
    """Who opened the request, as `audience` may read it: a customer reads a customer's address,
    and the desk's name for anyone on the support side (sales administration filing for them)."""
    role = role_seen_by(audience, policy, ticket.created_by_role)
    return ticket.created_by if role == ticket.created_by_role else policy.name


def notification_context(
    notification: Notification,
    event: Event,
    ticket: RequestState,
    policy: DeskPolicy,
    directory: Directory,
    survey_url: str | None = None,
    portal_url: str | None = None,
) -> dict[str, Any]:
    """Variables of a notification template; `portal_url`, the deployment's portal, wins over
    the desk's (`email_replies.portal_url`), and `request_url` is the request's page there."""
    language = notification.language
    portal = portal_url or policy.email_replies.portal_url
    person = directory.person(notification.recipient)
    labels = _labels(event, policy, language)
    return {
        "ticket": ticket,
        "creator": creator_seen_by(notification.audience, ticket, policy),
        "event": event,
        "policy": policy,
        "desk": policy.name,
        "language": language,
        "audience": notification.audience.value,
        "recipient": notification.recipient,
        "recipient_name": person.name if person else None,
        "date_format": person.date_format if person else "%Y-%m-%d",
        "answer": how_to_answer(policy, notification.audience),
        "portal_url": portal,
        "request_url": f"{portal.rstrip('/')}/requests/{ticket.key}" if portal else None,
        "labels": labels,
        "breach_at": breach_instant(event, policy, person),
        "reopen_allowed": policy.reopen.allowed,
        "reopen_days": policy.reopen.within_days,
        "reminder_days": policy.automations.reminder_days,
        "auto_close_days": policy.automations.auto_close_days,
        "survey_url": survey_url,
        "survey_scale": policy.survey.scale,
    }


def automatic_reply_context(
    request: AutomaticReplyRequested, policy: DeskPolicy | None, language: str
) -> dict[str, Any]:
    """Variables of an automatic answer to refused inbound mail."""
    portal_url = request.portal_url or (policy.email_replies.portal_url if policy else None)
    refusal = policy.email_replies.refusal if policy else None
    closed = policy.reopen.refusal if policy else None
    return {
        "request": request,
        "desk": policy.name if policy else None,
        "language": language,
        "key": request.ticket_key,
        "original_subject": request.original_subject,
        "portal_url": portal_url,
        "policy_refusal": refusal.get(language) if refusal else None,
        "closed_refusal": closed.get(language) if closed else None,
        "answer": "none",  # the refusal itself says where to go
    }
