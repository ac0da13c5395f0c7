"""Events of a ticket's stream (stream id = ticket id): one class per fact, in domain words."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from desk_contracts.base import Event, register


class Channel(StrEnum):
    PORTAL = "portal"
    EMAIL = "email"
    API = "api"


class Attachment(BaseModel):
    """A file stored in the blob store, referenced by its content hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str
    content_type: str
    size: int = Field(ge=0)
    sha256: str


@register
class TicketCreated(Event):
    """A request was submitted (portal, e-mail or API) and numbered."""

    event_type = "TicketCreated"
    schema_version = 1

    key: str  # type prefix + sequence, e.g. SPT-1042
    policy_id: str
    request_type: str
    priority: str
    subject: str
    description: str
    organisation_id: str
    requester_id: str  # the requester's e-mail address, lower-cased
    created_by: str  # who submitted it (the requester, or e.g. sales administration)
    channel: Channel
    participants: tuple[str, ...] = ()
    product_version: str | None = None
    company: str | None = None  # legal entity inside the customer's ERP
    contact: str | None = None  # who to contact for details
    error_message: str | None = None  # full text of an error message
    attachments: tuple[Attachment, ...] = ()
    language: str = "en"  # the requester's preferred language
    source_message_id: str | None = None  # e-mail Message-ID when created by mail
    created_by_role: str = "requester"  # the creator's role in the desk policy
    references: str | None = None  # key of an earlier request this one follows (e.g. a closed one)
    test_clock: str | None = None  # the test clock it lives on (desk_contracts.testclocks)


class ActedEvent(Event):
    """A fact caused by someone: who did it (id and policy role); `system` for automations."""

    actor_id: str = "system"
    actor_role: str = "system"


class StatusChanged(ActedEvent):
    """Base of every event that moves a ticket from one status to another (policy status ids).

    Readers that follow status (the SLA clocks, dashboards) subscribe to this base: a
    subclass says *why* the status moved. When `to_status == from_status` the event did
    not move the ticket (e.g. an assignment in a desk where assigning keeps the status).
    """

    from_status: str
    to_status: str


@register
class PriorityChanged(ActedEvent):
    """The priority moved (policy ids). Lowering needs a reason and informs the requester."""

    event_type = "PriorityChanged"
    schema_version = 1

    from_priority: str
    to_priority: str
    reason: str | None = None
    requester_must_be_informed: bool = False


# --- status changes: one class per reason the status moved ---


@register
class TicketQualified(StatusChanged):
    """The front desk received and validated the request."""

    event_type = "TicketQualified"


@register
class TicketAssigned(StatusChanged):
    """The request was given to an agent and/or a group (the status may stay the same)."""

    event_type = "TicketAssigned"

    assignee_id: str | None = None
    group_id: str | None = None


@register
class WorkStarted(StatusChanged):
    """The support team started (or resumed) working on the request."""

    event_type = "WorkStarted"


@register
class InformationRequested(StatusChanged):
    """The team waits for the customer; the comment says what is needed."""

    event_type = "InformationRequested"

    comment: str


@register
class WaitingForThirdParty(StatusChanged):
    """The team waits for a third party (vendor, add-on maker, hosting company)."""

    event_type = "WaitingForThirdParty"

    party: str
    comment: str | None = None


@register
class OperationScheduled(StatusChanged):
    """A long or planned operation (upgrade, restart): when it happens and who is responsible."""

    event_type = "OperationScheduled"

    scheduled_for: datetime
    responsible: str
    comment: str | None = None


@register
class TicketEscalated(StatusChanged):
    """Escalated inside the vendor: `target` is a policy escalation (triage, rnd, level2)."""

    event_type = "TicketEscalated"

    target: str
    comment: str | None = None


@register
class EscalationReturned(StatusChanged):
    """The experts, R&D or level 2 handed the request back to the service desk."""

    event_type = "EscalationReturned"

    comment: str | None = None


@register
class TicketResolved(StatusChanged):
    """A solution was provided (or proposed); the requester is asked to confirm it."""

    event_type = "TicketResolved"

    resolution_code: str
    comment: str


@register
class ResolutionConfirmed(StatusChanged):
    """The requester confirmed the resolution."""

    event_type = "ResolutionConfirmed"

    comment: str | None = None


@register
class ResolutionDisputed(StatusChanged):
    """The requester said the resolution does not answer the request."""

    event_type = "ResolutionDisputed"

    comment: str


@register
class TicketClosed(StatusChanged):
    """The request was closed, by an agent or automatically (`automatic`, after waiting).

    `confirmation_version` is the stream version of the requester's (or a participant's) public
    comment that confirmed the resolution, when the agent closed citing it.
    """

    event_type = "TicketClosed"

    resolution_code: str | None = None
    comment: str | None = None
    automatic: bool = False
    armed_version: int | None = None  # for automatic closes: the version the timer was armed at
    confirmation_version: int | None = None


@register
class TicketReopened(StatusChanged):
    """A closed request was reopened (per policy)."""

    event_type = "TicketReopened"

    comment: str | None = None


@register
class RequesterAnswered(StatusChanged):
    """The customer commented while the request waited for them: it goes back to the team."""

    event_type = "RequesterAnswered"

    body: str
    channel: Channel = Channel.PORTAL
    source_message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()


# --- facts that never move the status ---


@register
class CommentAdded(ActedEvent):
    """A comment, public (the requester sees it) or internal (the support team only)."""

    event_type = "CommentAdded"

    body: str
    public: bool
    channel: Channel = Channel.PORTAL
    source_message_id: str | None = None
    attachments: tuple[Attachment, ...] = ()


@register
class RequesterEscalated(ActedEvent):
    """The requester escalated the request: team lead and offer manager are told."""

    event_type = "RequesterEscalated"

    reason: str | None = None


@register
class TicketLinked(ActedEvent):
    """The request references an earlier one (e.g. a closed request it follows up)."""

    event_type = "TicketLinked"

    linked_key: str
    relation: str = "references"


@register
class ParticipantAdded(ActedEvent):
    """Someone else follows the request and is notified like the requester."""

    event_type = "ParticipantAdded"

    participant_id: str


@register
class NotificationsMuted(ActedEvent):
    """A requester or participant turned notifications off for this request."""

    event_type = "NotificationsMuted"

    participant_id: str


@register
class NotificationsUnmuted(ActedEvent):
    """A requester or participant turned notifications back on for this request."""

    event_type = "NotificationsUnmuted"

    participant_id: str


@register
class ReminderSent(ActedEvent):
    """The requester was reminded after `days_waiting` days without an answer (automatic)."""

    event_type = "ReminderSent"

    days_waiting: int
    armed_version: int


@register
class SurveyAnswered(ActedEvent):
    """The requester rated the handling of a closed request (1 = worst .. scale = best)."""

    event_type = "SurveyAnswered"

    rating: int = Field(ge=1)
    comment: str | None = None


@register
class NotificationFailed(ActedEvent):
    """A message about this request could not be delivered (the relay refused it for good)."""

    event_type = "NotificationFailed"

    recipient: str
    message_id: str
    notified_event_id: str
    error: str
