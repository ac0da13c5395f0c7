"""A small story-teller for SLA tests: one ticket of one seed desk, event by event.

Imported by the test modules of this folder (`conftest.py` puts the folder on `sys.path`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from desk_contracts.base import Event
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
from sla.domain.business_time import BusinessTime
from sla.domain.clocks import TicketClocks, read_clocks
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
        request_type = self.request_type or self.policy.request_types[0].id
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

    def clocks(self, *when: int) -> TicketClocks:
        return read_clocks(self.events, self.policy, self.calendar, self.at(*when))

    def timers(self, *when: int, **options: Any) -> tuple[Timer, ...]:
        return plan_timers(self.events, self.policy, self.calendar, self.at(*when), **options)


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
