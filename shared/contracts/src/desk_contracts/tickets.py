"""Events of a ticket's stream (stream id = ticket id): one class per fact, in domain words."""

from __future__ import annotations

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
