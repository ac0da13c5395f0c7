"""Commands other services forward to workflow on `ticket-commands` (key = ticket id).

intake forwards what requesters do outside the workflow API (a reply by e-mail, a survey
answer); the notifier reports a message the mail relay refused for good, so it shows in the
request's history. Workflow decides on each with the desk policy, as for any command.
"""

from __future__ import annotations

from pydantic import Field

from desk_contracts.base import Event, register
from desk_contracts.tickets import Attachment, Channel


@register
class CommentReceived(Event):
    """A requester or participant commented outside the workflow API (e.g. replied by mail)."""

    event_type = "CommentReceived"

    author_id: str  # e-mail address, lower-cased
    author_role: str  # policy role: requester, participant, ...
    organisation_id: str | None = None
    body: str
    channel: Channel = Channel.EMAIL
    source_message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()


@register
class SurveySubmitted(Event):
    """The satisfaction form was submitted (not merely opened) through its signed link."""

    event_type = "SurveySubmitted"

    respondent_id: str
    rating: int = Field(ge=1)
    comment: str | None = None


@register
class DeliveryFailed(Event):
    """A notification could not be delivered and will not be retried (permanent SMTP error)."""

    event_type = "DeliveryFailed"

    recipient: str
    message_id: str
    notified_event_id: str
    error: str
