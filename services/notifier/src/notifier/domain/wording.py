"""The words of a notification: subject with the request key, a body that says how to answer.

Plain text in the recipient's language (fr, en). Issue #5 moves these to Jinja2 template files
with HTML alternatives; the wording rules stay here until then.
"""

from __future__ import annotations

from desk_contracts.base import Event
from desk_contracts.tickets import CommentAdded, StatusChanged
from desk_policies.model import DeskPolicy
from notifier.domain.rules import Notification, TicketView

HEADLINES = {
    "TicketCreated": {"en": "Request received", "fr": "Demande reçue"},
    "CommentAdded": {"en": "New comment", "fr": "Nouveau commentaire"},
    "PriorityChanged": {"en": "Priority changed", "fr": "Priorité modifiée"},
    "ReminderSent": {
        "en": "Reminder: we are waiting for you",
        "fr": "Rappel : nous attendons votre réponse",
    },
    "RequesterEscalated": {"en": "Escalated by the requester", "fr": "Escaladée par le demandeur"},
}
STATUS_CHANGE = {"en": "Status changed to", "fr": "Nouveau statut :"}
HOW_TO_ANSWER = {
    "reply": {
        "en": "Reply to this e-mail to add a comment to your request.",
        "fr": "Répondez à cet e-mail pour ajouter un commentaire à votre demande.",
    },
    "portal": {
        "en": "Please answer on the support portal: {url}",
        "fr": "Merci de répondre sur le portail du support : {url}",
    },
}


def render(
    notification: Notification, event: Event, ticket: TicketView, policy: DeskPolicy
) -> tuple[str, str]:
    lang = "fr" if notification.language == "fr" else "en"
    if isinstance(event, StatusChanged) and event.event_type not in HEADLINES:
        label = policy.status(event.to_status).labels.get(lang)
        headline = f"{STATUS_CHANGE[lang]} {label}"
    else:
        headline = HEADLINES.get(event.event_type, {}).get(lang, event.event_type)
    subject = f"[{ticket.key}] {headline}: {ticket.subject}"
    lines = [headline, "", f"{ticket.key} — {ticket.subject}"]
    if isinstance(event, CommentAdded):
        lines += ["", event.body]
    if policy.email_replies.accepted:
        answer = HOW_TO_ANSWER["reply"][lang]
    else:
        answer = HOW_TO_ANSWER["portal"][lang].format(url=policy.email_replies.portal_url or "")
    lines += ["", answer]
    return subject, "\n".join(lines) + "\n"
