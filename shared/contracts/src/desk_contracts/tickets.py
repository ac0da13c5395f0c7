"""Events of a ticket's stream (stream id = ticket id). One class per fact, in the domain's words."""

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
