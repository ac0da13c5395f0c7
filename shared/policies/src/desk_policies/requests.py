"""A request's state under its desk's policy, folded from its events: the one fold of the system.

workflow decides every command on this state and publishes it with each event it appends
(`published`, the `desk_contracts.state.RequestState` contract); every other service reads that
published state instead of folding ticket events its own way. `evolve` is pure (the policy
travels with the state).

`version` counts the events applied (`TicketCreated` is version 1). `last_change_version` is
the version of the last event other than an automatic reminder: reminders and the automatic
close armed before a later change are stale. `waiting_since` is the anchor of the waiting days
of the desk's automations: the moment the request entered a status they watch, moved to
another watched status, or was last changed by a person (not `system`) while there; the
automation's own reminders do not restart it, and `reminders_sent` lists the days reminded
since it.

`resolved_version` is the version of the `TicketResolved` the request stands on (0 when none, or
once the status moved on from it); `resolution_replies` the versions of the public comments the
requester or a participant wrote since then: each one may be cited by the agent who closes the
request as the customer's confirmation of the resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from desk_contracts.base import Event
from desk_contracts.state import RequestState
from desk_contracts.tickets import (
    ActedEvent,
    CommentAdded,
    NotificationsMuted,
    NotificationsUnmuted,
    ParticipantAdded,
    PriorityChanged,
    ReminderSent,
    RequesterEscalated,
    ResolutionConfirmed,
    StatusChanged,
    SurveyAnswered,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketLinked,
    TicketResolved,
)
from desk_policies.model import DeskPolicy, Side, StatusCategory

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Ticket:
    """One request as its events made it (see module)."""

    policy: DeskPolicy
    ticket_id: str
    version: int = 0
    status: str | None = None  # None until created
    key: str = ""
    request_type: str = ""
    priority: str = ""
    organisation_id: str = ""
    requester_id: str = ""
    created_by: str = ""
    created_by_role: str = ""
    channel: str = ""
    language: str = "en"
    subject: str = ""
    source_message_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    assignee_id: str | None = None
    group_id: str | None = None
    participants: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    links: tuple[str, ...] = ()
    resolution_code: str | None = None
    resolution_confirmed: bool = False
    resolved_version: int = 0
    resolution_replies: tuple[int, ...] = ()
    closed_at: datetime | None = None
    last_change_version: int = 0
    waiting_since: datetime | None = None
    waiting_version: int = 0
    person_changed_at: datetime | None = None
    reminders_sent: frozenset[int] = frozenset()
    requester_escalations: int = 0
    survey_rating: int | None = None
    test_clock: str | None = None  # the test clock it lives on (desk_contracts.testclocks)

    @classmethod
    def blank(cls, policy: DeskPolicy, ticket_id: str) -> Ticket:
        """The state before `TicketCreated`: only creation is possible."""
        return cls(policy=policy, ticket_id=ticket_id)

    @property
    def exists(self) -> bool:
        return self.status is not None

    @property
    def is_closed(self) -> bool:
        return self.status is not None and self.status in self.policy.closed_statuses

    @property
    def category(self) -> StatusCategory | None:
        return None if self.status is None else self.policy.status(self.status).category

    def involves(self, person: str) -> bool:
        """Is `person` the requester or a participant of this request?"""
        return person == self.requester_id or person in self.participants

    def has_waited(self, days: int, now: datetime) -> bool:
        """Has it waited `days` days at `now` (the policy's one rule, from `waiting_since`)?"""
        since = self.waiting_since
        return since is not None and now >= self.policy.waited_until(since, days)


Changes = dict[str, Any]  # fields of the state an event changes, applied once by `evolve`

_FIELDS = tuple(f.name for f in fields(Ticket))
_FIELD_INDEX = {name: index for index, name in enumerate(_FIELDS)}
_VALUES = attrgetter(*_FIELDS)


def _changed(state: Ticket, changes: Changes) -> Ticket:
    """`dataclasses.replace(state, **changes)` in half the time: it runs for every event of every
    fold, and a rebuild folds the whole log."""
    values = list(_VALUES(state))
    for name, value in changes.items():
        values[_FIELD_INDEX[name]] = value
    return Ticket(*values)


def _created(state: Ticket, e: TicketCreated) -> Changes:
    return {
        "status": state.policy.initial_status,
        "key": e.key,
        "request_type": e.request_type,
        "priority": e.priority,
        "organisation_id": e.organisation_id,
        "requester_id": e.requester_id,
        "created_by": e.created_by,
        "created_by_role": e.created_by_role,
        "channel": e.channel.value,
        "language": e.language,
        "subject": e.subject,
        "source_message_id": e.source_message_id,
        "created_at": e.occurred_at,
        "participants": frozenset(e.participants),
        "test_clock": e.test_clock,
    }


def _status_changed(state: Ticket, e: StatusChanged) -> Changes:
    closing = e.to_status in state.policy.closed_statuses
    changes: Changes = {
        "status": e.to_status,
        "closed_at": e.occurred_at if closing else None,
        "resolution_confirmed": state.resolution_confirmed and e.to_status == e.from_status,
    }
    if isinstance(e, TicketAssigned):
        changes.update(assignee_id=e.assignee_id, group_id=e.group_id)
    elif isinstance(e, TicketResolved):
        changes.update(resolution_code=e.resolution_code, resolution_confirmed=False)
    elif isinstance(e, ResolutionConfirmed):
        changes["resolution_confirmed"] = True
    elif isinstance(e, TicketClosed) and e.resolution_code is not None:
        changes["resolution_code"] = e.resolution_code
    return changes


def _other(state: Ticket, e: Event) -> Changes:
    if isinstance(e, PriorityChanged):
        return {"priority": e.to_priority}
    if isinstance(e, ParticipantAdded):
        return {"participants": state.participants | {e.participant_id}}
    if isinstance(e, NotificationsMuted):
        return {"muted": state.muted | {e.participant_id}}
    if isinstance(e, NotificationsUnmuted):
        return {"muted": state.muted - {e.participant_id}}
    if isinstance(e, TicketLinked):
        return {"links": (*state.links, e.linked_key)}
    if isinstance(e, RequesterEscalated):
        return {"requester_escalations": state.requester_escalations + 1}
    if isinstance(e, SurveyAnswered):
        return {"survey_rating": e.rating}
    if isinstance(e, ReminderSent):
        return {"reminders_sent": state.reminders_sent | {e.days_waiting}}
    return {}


def _waiting(state: Ticket, status: str | None, event: Event, version: int) -> Changes:
    """Where the waiting anchor (see module) moves for `event`, applied at `version` and leaving
    the request in `status`."""
    by_person = isinstance(event, ActedEvent) and event.actor_role != SYSTEM
    if isinstance(event, TicketCreated) or status != state.status:
        anchored = status in state.policy.automations.statuses
    elif state.waiting_since is not None and by_person:
        anchored = True
    else:
        return {}
    if not anchored:
        return {"waiting_since": None, "waiting_version": 0, "reminders_sent": frozenset()}
    since = event.occurred_at
    return {"waiting_since": since, "waiting_version": version, "reminders_sent": frozenset()}


def _replies(state: Ticket, event: Event, version: int) -> Changes:
    """Follow the standing resolution and the customers' public comments since it (see module)."""
    if isinstance(event, TicketResolved):
        return {"resolved_version": version, "resolution_replies": ()}
    if isinstance(event, StatusChanged) and event.to_status != event.from_status:
        return {"resolved_version": 0, "resolution_replies": ()}
    if isinstance(event, CommentAdded) and state.resolved_version and _by_customer(state, event):
        return {"resolution_replies": (*state.resolution_replies, version)}
    return {}


def _by_customer(state: Ticket, comment: CommentAdded) -> bool:
    """Is `comment` public and written by the requester or a participant of the request?"""
    role = state.policy.role(comment.actor_role)
    customer = role is not None and role.side is Side.CUSTOMER
    return comment.public and customer and state.involves(comment.actor_id)


def evolve(state: Ticket, event: Event) -> Ticket:
    """The state after `event` (one copy of the state: the changes are gathered first).
    Unknown event types only bump the version."""
    if isinstance(event, TicketCreated):
        changes = _created(state, event)
    elif isinstance(event, StatusChanged):
        changes = _status_changed(state, event)
    else:
        changes = _other(state, event)
    version = state.version + 1
    changes.update(_waiting(state, changes.get("status", state.status), event, version))
    changes.update(_replies(state, event, version))
    changes.update(version=version, updated_at=event.occurred_at)
    if isinstance(event, ActedEvent) and event.actor_role != SYSTEM:
        changes["person_changed_at"] = event.occurred_at
    if not isinstance(event, ReminderSent):
        changes["last_change_version"] = version
    return _changed(state, changes)


def fold(state: Ticket, events: list[Event]) -> Ticket:
    """Apply events in order (replaying a stream from `Ticket.blank`)."""
    for event in events:
        state = evolve(state, event)
    return state


def published(state: Ticket) -> RequestState:
    """The state as the `RequestState` contract (what workflow publishes with each event)."""
    assert state.status is not None and state.created_at and state.updated_at
    status = state.policy.status(state.status)
    return RequestState(
        ticket_id=state.ticket_id,
        key=state.key,
        policy_id=state.policy.id,
        version=state.version,
        request_type=state.request_type,
        priority=state.priority,
        status=state.status,
        category=status.category.value,
        expected_actor=status.expected_actor,
        organisation_id=state.organisation_id,
        requester_id=state.requester_id,
        created_by=state.created_by,
        created_by_role=state.created_by_role,
        channel=state.channel,
        language=state.language,
        subject=state.subject,
        source_message_id=state.source_message_id,
        participants=tuple(sorted(state.participants)),
        muted=tuple(sorted(state.muted)),
        assignee_id=state.assignee_id,
        group_id=state.group_id,
        links=state.links,
        resolution_code=state.resolution_code,
        resolution_confirmed=state.resolution_confirmed,
        created_at=state.created_at,
        updated_at=state.updated_at,
        closed_at=state.closed_at,
        waiting_since=state.waiting_since,
        waiting_version=state.waiting_version,
        person_changed_at=state.person_changed_at,
        last_change_version=state.last_change_version,
        reminders_sent=tuple(sorted(state.reminders_sent)),
        survey_rating=state.survey_rating,
        test_clock=state.test_clock,
    )
