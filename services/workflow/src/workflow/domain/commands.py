"""What actors ask of a ticket: one command a request, each naming its actor (id and role).
A request itself is created by intake (`TicketCreated`), never by a command of workflow.

Commands are plain frozen data; `decide` turns them into events or a rejection. Time is
never in a command unless it is part of what is asked (e.g. when an operation is planned).
The field types of what an HTTP client may send are bounded (`desk_contracts.inputs`): pydantic
checks them when the HTTP adapter builds a command; code that builds commands itself is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from desk_contracts.inputs import Address, Line, Name, Text, Version
from desk_contracts.tickets import Channel


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
class Qualify(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(Command):
    assignee_id: Address | None = None
    group_id: Name | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWork(Command):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInformation(Command):
    comment: Text


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForThirdParty(Command):
    party: Name
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleOperation(Command):
    scheduled_for: datetime
    responsible: Name
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalate(Command):
    target: Name  # a policy escalation: triage, rnd, level2...
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnFromEscalation(Command):
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(Command):
    resolution_code: Name
    comment: Text


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmResolution(Command):
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeResolution(Command):
    comment: Text


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    """`confirmation_version` cites the requester's (or a participant's) public comment that
    confirms the resolution, by its version in the request's history."""

    resolution_code: Name | None = None
    comment: Text | None = None
    confirmation_version: Version | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reopen(Command):
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddComment(Command):
    body: Text
    public: bool = True
    channel: Channel = Channel.PORTAL
    source_message_id: Line | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePriority(Command):
    priority: Name
    reason: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateByRequester(Command):
    reason: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRequest(Command):
    linked_key: Name
    relation: Name = "references"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddParticipant(Command):
    participant_id: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteNotifications(Command):
    participant_id: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmuteNotifications(Command):
    participant_id: Address


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
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordDeliveryFailure(Command):
    """The notifier reports a message refused for good, to show in the request's history."""

    actor: Actor = field(default=SYSTEM)
    recipient: str
    message_id: str
    notified_event_id: str
    error: str
