"""What actors ask of a ticket: one command a request, each naming its actor (id and role).
A request itself is created by intake (`TicketCreated`), never by a command of workflow.

Commands are plain frozen data; `decide` turns them into events or a rejection. Time is
never in a command unless it is part of what is asked (e.g. when an operation is planned).
The field types of what an HTTP client may send are bounded (`desk_contracts.inputs`): the HTTP
adapter derives each command's body from its fields (`workflow.adapters.commands_api`) and its
documentation from its docstring; code that builds commands itself is trusted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from desk_contracts.inputs import Address, FilledText, Line, Name, Text, Version
from desk_contracts.tickets import Attachment, Channel

MAX_ATTACHMENTS = 10  # files on one comment
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


class AttachedFile(BaseModel):
    """A file already in the blob store, named by its content's SHA-256 (bounded fields)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: Name
    content_type: Annotated[
        str,
        StringConstraints(max_length=200, pattern=r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+$"),
    ]
    size: int = Field(ge=0, le=MAX_ATTACHMENT_BYTES)
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

    def attachment(self) -> Attachment:
        """This file as events name it."""
        return Attachment(**self.model_dump())


Attachments = Annotated[tuple[AttachedFile, ...], Field(max_length=MAX_ATTACHMENTS)]


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
    """Qualify the request: what it asks has been checked, and the team can take it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Assign(Command):
    """Assign the request to an agent or a group.

    `assignee_id`: staff of the desk (mailed); `group_id`: a name the desk uses (mailed to no
    one); one of them at least."""

    assignee_id: Address | None = None
    group_id: Name | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWork(Command):
    """Start work on the request, or resume it after waiting."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestInformation(Command):
    """Ask the customer for information.

    `comment` says what is needed; the request then waits for the customer."""

    comment: FilledText


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitForThirdParty(Command):
    """Put the request on hold for a third party.

    `party`: a vendor, an add-on maker, a hosting company... of the desk's list."""

    party: Name
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleOperation(Command):
    """Plan an operation on the customer's service.

    An upgrade, a restart... at `scheduled_for` (in the future, with a time zone), under
    `responsible`."""

    scheduled_for: AwareDatetime
    responsible: Name
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalate(Command):
    """Escalate the request.

    `target`: one of the desk's escalation targets (triage, R&D, level 2...)."""

    target: Name  # a policy escalation: triage, rnd, level2...
    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnFromEscalation(Command):
    """Hand the request back to the team from an escalation."""

    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(Command):
    """Resolve the request.

    With one of the desk's resolution codes and a comment explaining the resolution."""

    resolution_code: Name
    comment: FilledText


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmResolution(Command):
    """The requester confirms the resolution."""

    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DisputeResolution(Command):
    """The requester disputes the resolution.

    `comment` says what is missing."""

    comment: FilledText


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(Command):
    """Close the request, with a resolution code when none was given yet.

    `confirmation_version` cites the requester's (or a participant's) public comment that
    confirms the resolution, by its version in the request's history."""

    resolution_code: Name | None = None
    comment: Text | None = None
    confirmation_version: Version | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reopen(Command):
    """Reopen a closed request, when the desk allows it."""

    comment: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AddComment(Command):
    """Comment on the request.

    Public (the customer reads it), or an internal note (`public: false`) read by the support
    side only. A customer's public comment while the request waits for them is their answer:
    it sends the request back to the team. `attachments`: at most 10 files already stored
    (name, content type, size, SHA-256), shown with the comment."""

    body: FilledText
    public: bool = True
    channel: Channel = Channel.PORTAL
    source_message_id: Line | None = None
    attachments: Attachments = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChangePriority(Command):
    """Change the request's priority.

    Lowering it needs a `reason`, which the requester reads."""

    priority: Name
    reason: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalateByRequester(Command):
    """The requester escalates the request.

    The desk's managers are told."""

    reason: Text | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkRequest(Command):
    """Link the request to another one.

    `linked_key`: the other request's key, e.g. the one it continues."""

    linked_key: Name
    relation: Name = "references"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddParticipant(Command):
    """Add a participant, who receives the request's mail.

    A person the directory admits in the request's organisation, or staff of the desk."""

    participant_id: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class MuteNotifications(Command):
    """Stop a follower's mail about this request.

    A customer mutes their own."""

    participant_id: Address


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmuteNotifications(Command):
    """Resume a follower's mail about this request."""

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
    """Answer the satisfaction survey of a closed request.

    `rating` on the desk's scale."""

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
