"""What actors ask of a ticket: one command a request, each naming its actor (id and role).

Commands are plain frozen data; `decide` turns them into events or a rejection. Time is
never in a command unless it is part of what is asked (e.g. when an operation is planned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from desk_contracts.tickets import Attachment, Channel


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: an id (e-mail or agent id), a role of the desk policy, and, for customers,
    the organisation they belong to."""

    id: str
    role: str
    organisation_id: str | None = None


SYSTEM = Actor(id="system", role="system")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    actor: Actor


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateTicket(Command):
    key: str
    request_type: str
    priority: str
    subject: str
    description: str
    organisation_id: str
    requester_id: str
    channel: Channel = Channel.PORTAL
    participants: tuple[str, ...] = ()
    product_version: str | None = None
    company: str | None = None
    contact: str | None = None
    error_message: str | None = None
    attachments: tuple[Attachment, ...] = ()
    language: str = "en"
    source_message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Qualify(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(Command):
    assignee_id: str | None = None
    group_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWork(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInformation(Command):
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForThirdParty(Command):
    party: str
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleOperation(Command):
    scheduled_for: datetime
    responsible: str
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalate(Command):
    target: str  # a policy escalation: triage, rnd, level2...
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnFromEscalation(Command):
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(Command):
    resolution_code: str
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmResolution(Command):
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeResolution(Command):
    comment: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    resolution_code: str | None = None
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reopen(Command):
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddComment(Command):
    body: str
    public: bool = True
    channel: Channel = Channel.PORTAL
    source_message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePriority(Command):
    priority: str
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateByRequester(Command):
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRequest(Command):
    linked_key: str
    relation: str = "references"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddParticipant(Command):
    participant_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteNotifications(Command):
    participant_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmuteNotifications(Command):
    participant_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReminder(Command):
    """Armed by the sla service when the ticket was at `armed_version`; stale-safe."""

    actor: Actor = field(default=SYSTEM)
    armed_version: int
    days_waiting: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AutoClose(Command):
    """Armed by the sla service when the ticket was at `armed_version`; stale-safe."""

    actor: Actor = field(default=SYSTEM)
    armed_version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AnswerSurvey(Command):
    rating: int
    comment: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDeliveryFailure(Command):
    """The notifier reports a message refused for good, to show in the request's history."""

    actor: Actor = field(default=SYSTEM)
    recipient: str
    message_id: str
    notified_event_id: str
    error: str
