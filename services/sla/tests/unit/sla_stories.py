"""A small story-teller for SLA tests: one ticket of one seed desk, event by event.

The story is told as events; sla reads it as workflow publishes it: the request's state after
each event, folded by the one fold (`published.published_states`), and the timeline of those
states. Imported by the test modules of this folder (`conftest.py` puts the folder on `sys.path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from published import published_states

from desk_contracts.base import Event
from desk_contracts.state import RequestState
from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    InformationRequested,
    PriorityChanged,
    ReminderSent,
    RequesterAnswered,
    StatusChanged,
    TicketAssigned,
    TicketClosed,
    TicketCreated,
    TicketEscalated,
    TicketQualified,
    TicketReopened,
    TicketResolved,
    WaitingForThirdParty,
    WorkStarted,
)
from desk_policies import DeskPolicy, shipped_policy
from desk_policies.calendars import shipped_calendars
from desk_policies.model import SlaTarget
from sla.domain.business_time import BusinessTime
from sla.domain.clocks import TicketClocks, read_clocks
from sla.domain.timeline import Timeline
from sla.domain.timers import Timer, plan_timers

CALENDARS = shipped_calendars()
H = timedelta(hours=1)
M = timedelta(minutes=1)

# Which event moves a ticket into which status (the SLA reads only `to_status`).
MOVES: dict[str, tuple[type[StatusChanged], dict[str, Any]]] = {
    "qualified": (TicketQualified, {}),
    "assigned": (TicketAssigned, {"assignee_id": "bob"}),
    "in_progress": (WorkStarted, {}),
    "waiting_customer": (InformationRequested, {"comment": "Which version?"}),
    "waiting_third_party": (WaitingForThirdParty, {"party": "atlassian"}),
    "waiting_triage": (TicketEscalated, {"target": "triage"}),
    "waiting_rnd": (TicketEscalated, {"target": "rnd"}),
    "resolved": (TicketResolved, {"resolution_code": "done", "comment": "Fixed."}),
    "answered": (TicketResolved, {"resolution_code": "done", "comment": "Answered."}),
    "closed": (TicketClosed, {"resolution_code": "done"}),
}


@dataclass
class Story:
    """One ticket of one desk, told event by event at local wall-clock times of its calendar."""

    desk: str
    priority: str = "medium"
    request_type: str | None = None
    start: tuple[int, ...] = (2026, 3, 2, 10, 0)  # Monday 2 March 2026, 10:00 local
    events: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.policy: DeskPolicy = shipped_policy(self.desk)
        self.calendar = BusinessTime(CALENDARS[self.policy.sla.calendar])
        self.status = self.policy.initial_status
        self.request_type = request_type = self.request_type or self.policy.request_types[0].id
        self.events.append(
            TicketCreated(
                ticket_id="T-1",
                occurred_at=self.at(*self.start),
                key="SPT-1",
                policy_id=self.desk,
                request_type=request_type,
                priority=self.priority,
                subject="ERP crashes",
                description="...",
                organisation_id="acme",
                requester_id="alice@acme.test",
                created_by="alice@acme.test",
                channel=Channel.PORTAL,
            )
        )

    def at(self, *parts: int) -> datetime:
        return datetime(*parts, tzinfo=self.calendar.zone)  # type: ignore[arg-type, misc]

    def moves(self, to: str, *when: int, role: str = "agent") -> Story:
        cls, extra = MOVES.get(to, (StatusChanged, {}))
        if to == "in_progress" and self.status == "waiting_customer" and role == "requester":
            cls, extra = RequesterAnswered, {"body": "Here it is."}
        elif to == "in_progress" and self.status in self.policy.closed_statuses:
            cls, extra = TicketReopened, {}
        self.events.append(
            cls(
                ticket_id="T-1",
                occurred_at=self.at(*when),
                actor_id=role,
                actor_role=role,
                from_status=self.status,
                to_status=to,
                **extra,
            )
        )
        self.status = to
        return self

    def reprioritised(self, to: str, *when: int) -> Story:
        self.events.append(
            PriorityChanged(
                ticket_id="T-1",
                occurred_at=self.at(*when),
                actor_id="lead",
                actor_role="team_lead",
                from_priority=self.priority,
                to_priority=to,
                reason="re-evaluated",
            )
        )
        self.priority = to
        return self

    def commented(self, *when: int, role: str = "agent") -> Story:
        self.events.append(
            CommentAdded(
                ticket_id="T-1",
                occurred_at=self.at(*when),
                actor_id=role,
                actor_role=role,
                body="...",
                public=True,
            )
        )
        return self

    def reminded(self, days: int, *when: int) -> Story:
        self.events.append(
            ReminderSent(
                ticket_id="T-1",
                occurred_at=self.at(*when),
                days_waiting=days,
                armed_version=len(self.events),
            )
        )
        return self

    def published(self) -> tuple[Timeline, RequestState]:
        """The story as sla reads it: its timeline and its latest published state."""
        return published(self.events, self.policy)

    def target(self, priority: str | None = None) -> SlaTarget:
        """The policy's targets for the story's request type at `priority` (default: its own)."""
        assert self.request_type is not None
        target = self.policy.sla.target(self.request_type, priority or self.priority)
        assert target is not None
        return target

    def clocks(self, *when: int, language: str = "en") -> TicketClocks:
        timeline, state = self.published()
        return read_clocks(timeline, state, self.policy, self.calendar, self.at(*when), language)

    def timers(
        self, *when: int, calendar: BusinessTime | None = None, **options: Any
    ) -> tuple[Timer, ...]:
        timeline, state = self.published()
        on = calendar or self.calendar
        return plan_timers(timeline, state, self.policy, on, self.at(*when), **options)


def published(events: list[Event], policy: DeskPolicy) -> tuple[Timeline, RequestState]:
    """`events` as sla reads them: the timeline of the states published with them, and the
    latest state."""
    states = published_states(events, policy)
    return Timeline.of(states), states[-1]


DAY = (2026, 3, 2)  # a Monday: every desk is open from 10:00 to 12:00
DESKS = ["erp-vendor", "cloud-partner", "saas-desk"]
# The status in which each desk's team takes a request in charge ...
TAKEN_IN_CHARGE = {
    "erp-vendor": "in_progress",
    "cloud-partner": "in_progress",
    "saas-desk": "assigned",
}
# ... and the one in which it gives its resolution or proposed solution.
SOLVED = {"erp-vendor": "resolved", "cloud-partner": "resolved", "saas-desk": "answered"}
