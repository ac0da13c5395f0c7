"""A ticket's state, folded from its events by `evolve` (pure; the policy travels with it).

`version` counts the events applied (`TicketCreated` is version 1). `last_change_version`
is the version of the last event other than an automatic reminder: reminders and the
auto-close armed after a change are stale once it moves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from desk_contracts.base import Event
from desk_contracts.tickets import (
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
from desk_policies.model import DeskPolicy, StatusCategory


@dataclass(frozen=True, slots=True)
class Ticket:
    policy: DeskPolicy
    ticket_id: str
    version: int = 0
    status: str | None = None  # None until created
    key: str = ""
    request_type: str = ""
    priority: str = ""
    organisation_id: str = ""
    requester_id: str = ""
    created_at: datetime | None = None
    assignee_id: str | None = None
    group_id: str | None = None
    participants: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()
    links: tuple[str, ...] = ()
    resolution_code: str | None = None
    resolution_confirmed: bool = False
    closed_at: datetime | None = None
    last_change_version: int = 0
    last_change_at: datetime | None = None
    reminders_sent: frozenset[int] = frozenset()
    requester_escalations: int = 0
    survey_rating: int | None = None

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


def _created(state: Ticket, e: TicketCreated) -> Ticket:
    return replace(
        state,
        status=state.policy.initial_status,
        key=e.key,
        request_type=e.request_type,
        priority=e.priority,
        organisation_id=e.organisation_id,
        requester_id=e.requester_id,
        created_at=e.occurred_at,
        participants=frozenset(e.participants),
    )


def _status_changed(state: Ticket, e: StatusChanged) -> Ticket:
    closing = e.to_status in state.policy.closed_statuses
    state = replace(
        state,
        status=e.to_status,
        closed_at=e.occurred_at if closing else None,
        resolution_confirmed=state.resolution_confirmed and e.to_status == e.from_status,
    )
    if isinstance(e, TicketAssigned):
        return replace(state, assignee_id=e.assignee_id, group_id=e.group_id)
    if isinstance(e, TicketResolved):
        return replace(state, resolution_code=e.resolution_code, resolution_confirmed=False)
    if isinstance(e, ResolutionConfirmed):
        return replace(state, resolution_confirmed=True)
    if isinstance(e, TicketClosed) and e.resolution_code is not None:
        return replace(state, resolution_code=e.resolution_code)
    return state


def _other(state: Ticket, e: Event) -> Ticket:
    if isinstance(e, PriorityChanged):
        return replace(state, priority=e.to_priority)
    if isinstance(e, ParticipantAdded):
        return replace(state, participants=state.participants | {e.participant_id})
    if isinstance(e, NotificationsMuted):
        return replace(state, muted=state.muted | {e.participant_id})
    if isinstance(e, NotificationsUnmuted):
        return replace(state, muted=state.muted - {e.participant_id})
    if isinstance(e, TicketLinked):
        return replace(state, links=(*state.links, e.linked_key))
    if isinstance(e, RequesterEscalated):
        return replace(state, requester_escalations=state.requester_escalations + 1)
    if isinstance(e, SurveyAnswered):
        return replace(state, survey_rating=e.rating)
    if isinstance(e, ReminderSent):
        return replace(state, reminders_sent=state.reminders_sent | {e.days_waiting})
    return state


def evolve(state: Ticket, event: Event) -> Ticket:
    """The state after `event`. Unknown event types only bump the version."""
    if isinstance(event, TicketCreated):
        state = _created(state, event)
    elif isinstance(event, StatusChanged):
        state = _status_changed(state, event)
    else:
        state = _other(state, event)
    version = state.version + 1
    if isinstance(event, ReminderSent):
        return replace(state, version=version)
    return replace(
        state,
        version=version,
        last_change_version=version,
        last_change_at=event.occurred_at,
        reminders_sent=frozenset(),
    )


def fold(state: Ticket, events: list[Event]) -> Ticket:
    """Apply events in order (replaying a stream from `Ticket.blank`)."""
    for event in events:
        state = evolve(state, event)
    return state
