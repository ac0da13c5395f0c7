"""Reminders and automatic closing across the daylight-saving changes of each desk's zone.

The contract between sla and workflow: sla arms a reminder or an automatic close from the state
workflow publishes, for the instant the request has waited N days (`DeskPolicy.waited_until`:
calendar days in the desk's zone); workflow accepts the `SendReminder` / `AutoClose` fired then
by the same rule. Per desk, a request is put in Waiting for customer two days before the spring
change of its zone and two days before the autumn one: every timer falls on the same local
wall-clock time N days later (23 or 25 hours in the day of the change), workflow accepts it at
that instant and refuses it one minute earlier as not waited yet, and the request ends closed
automatically. With "N days" as N x 24 hours on either side (the regression), a timer fired
an hour early in spring is refused and never retried, and in autumn one is accepted an hour
early.

saas-desk has no automations: its test shows that no reminder or automatic close is ever armed
there, and that its other day rule, reopening within 30 days of closing, ends at the same local
wall-clock time 30 days later across its zone's changes.

Pure: intake's `TicketCreated`, workflow's `decide` and the one fold, sla's `plan_timers`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from published import published_states

from desk_contracts.base import Event
from desk_contracts.tickets import Channel, ReminderSent, TicketClosed, TicketReopened
from desk_policies import DeskPolicy, shipped_policy
from desk_policies.calendars import shipped_calendars
from desk_policies.model import Automations
from desk_policies.requests import Ticket, evolve
from intake.domain.submission import Submission, Submitter, ticket_created
from sla.domain.business_time import BusinessTime
from sla.domain.timeline import Timeline
from sla.domain.timers import Timer, TimerKind, plan_timers
from workflow.domain import Actor, Command, Rejection, decide
from workflow.domain.commands import (
    AutoClose,
    Close,
    Reopen,
    RequestInformation,
    Resolve,
    SendReminder,
    StartWork,
)

MINUTE = timedelta(minutes=1)
REQUESTER = Actor("anne@acme.example", "requester", "acme")
AUTOMATIONS = frozenset({TimerKind.REMINDER, TimerKind.AUTO_CLOSE})

# Each desk's zone changes: Europe on the last Sundays of March and October, North America on
# the second Sunday of March and the first of November (2026).
CHANGES = {
    "Europe/Zurich": {"spring": datetime(2026, 3, 29), "autumn": datetime(2026, 10, 25)},
    "Europe/Paris": {"spring": datetime(2026, 3, 29), "autumn": datetime(2026, 10, 25)},
    "America/Toronto": {"spring": datetime(2026, 3, 8), "autumn": datetime(2026, 11, 1)},
}
# Who puts a request of each desk in Waiting for customer (or answers it, at saas-desk).
AGENTS = {
    "erp-vendor": Actor("fd@desk.example", "front_desk"),
    "cloud-partner": Actor("ag@desk.example", "agent"),
    "saas-desk": Actor("ag@desk.example", "agent"),
}


class Request:
    """One request of a desk, created as intake creates it and driven by workflow's `decide`."""

    def __init__(self, desk: str, day: datetime) -> None:
        """The request is created at 09:00 on `day` in the desk's zone."""
        self.policy: DeskPolicy = shipped_policy(desk)
        submission = Submission(
            policy_id=desk,
            request_type=self.policy.request_types[0].id,
            priority="medium",
            subject="La paie ne part pas",
            description="Depuis ce matin",
            organisation_id="acme",
            requester=REQUESTER.id,
        )
        created = ticket_created(
            submission,
            self.policy,
            Submitter(REQUESTER.id, REQUESTER.role),
            ticket_id=str(uuid.uuid4()),
            sequence=1,
            channel=Channel.PORTAL,
            now=self.local(day, 9),
        )
        self.state = evolve(Ticket.blank(self.policy, created.ticket_id), created)
        self.events: list[Event] = [created]

    def local(self, day: datetime, hour: int) -> datetime:
        """`hour` o'clock on `day` in the desk's zone, in UTC (as every instant travels)."""
        local = datetime(day.year, day.month, day.day, hour, tzinfo=self.policy.zone)
        return local.astimezone(UTC)

    def do(self, command: Command, now: datetime) -> list[Event]:
        decided = decide(self.state, command, now)
        assert not isinstance(decided, Rejection), decided.reason
        for event in decided:
            self.state = evolve(self.state, event)
            self.events.append(event)
        return decided

    def refused(self, command: Command, now: datetime) -> str:
        decided = decide(self.state, command, now)
        assert isinstance(decided, Rejection), f"accepted at {now}: {decided}"
        return decided.reason

    def waiting_timers(self, now: datetime) -> list[Timer]:
        """The reminder and automatic-close timers sla arms from the published state."""
        states = published_states(self.events, self.policy)
        calendar = BusinessTime(shipped_calendars()[self.policy.sla.calendar])
        timers = plan_timers(Timeline.of(states), states[-1], self.policy, calendar, now)
        return [t for t in timers if t.kind in AUTOMATIONS]


def same_wall_clock_days_later(request: Request, since: datetime, at: datetime, days: int) -> bool:
    """Is `at` the wall-clock time of `since`, `days` days later, in the desk's zone?"""
    zone = request.policy.zone
    then, now = since.astimezone(zone), at.astimezone(zone)
    return now.replace(tzinfo=None) == then.replace(tzinfo=None) + timedelta(days=days)


def days_before_the_change(desk: str, season: str, days: int) -> datetime:
    return CHANGES[shipped_policy(desk).time_zone][season] - timedelta(days=days)


def put_in_waiting(desk: str, season: str) -> tuple[Request, datetime]:
    """A request of `desk` put in Waiting for customer at 10:00 two days before the change."""
    day = days_before_the_change(desk, season, 2)
    request = Request(desk, day)
    waiting_at = request.local(day, 10)
    request.do(RequestInformation(actor=AGENTS[desk], comment="Quelle version ?"), waiting_at)
    assert request.state.status == "waiting_customer"
    return request, waiting_at


def command_of(timer: Timer) -> Command:
    assert timer.days_waiting is not None
    if timer.kind is TimerKind.REMINDER:
        return SendReminder(armed_version=timer.armed_version, days_waiting=timer.days_waiting)
    return AutoClose(armed_version=timer.armed_version)


@pytest.mark.parametrize("season", ["spring", "autumn"])
@pytest.mark.parametrize("desk", ["erp-vendor", "cloud-partner"])
def test_reminders_and_the_automatic_close_are_accepted_when_sla_fires_them(
    desk: str, season: str
) -> None:
    request, waiting_at = put_in_waiting(desk, season)
    automations = request.policy.automations
    assert automations.auto_close_days is not None
    now = waiting_at
    for days in [*automations.reminder_days, automations.auto_close_days]:
        timer = request.waiting_timers(now)[0]  # the next one sla arms after each event
        assert timer.days_waiting == days
        assert same_wall_clock_days_later(request, waiting_at, timer.fire_at, days)
        assert timer.fire_at - waiting_at != timedelta(days=days)  # a 23 or 25 h day between
        refusal = request.refused(command_of(timer), timer.fire_at - MINUTE)
        assert refusal == f"{request.state.key} has not waited {days} days yet"
        [event] = request.do(command_of(timer), timer.fire_at)
        if timer.kind is TimerKind.REMINDER:
            assert isinstance(event, ReminderSent) and event.days_waiting == days
        else:
            assert isinstance(event, TicketClosed) and event.automatic
        now = timer.fire_at
    assert request.state.is_closed and request.state.resolution_code == "no_answer"
    assert request.waiting_timers(now) == []


@pytest.mark.parametrize("season", ["spring", "autumn"])
def test_the_saas_desk_arms_no_waiting_timer_and_its_reopening_window_keeps_wall_clock_days(
    season: str,
) -> None:
    policy = shipped_policy("saas-desk")
    assert policy.automations == Automations()  # seed 004 names no reminder nor automatic close
    days = policy.reopen.within_days
    assert days == 30
    day = days_before_the_change("saas-desk", season, days - 2)  # the window ends 2 days after
    request, agent = Request("saas-desk", day), AGENTS["saas-desk"]
    request.do(StartWork(actor=agent), request.local(day, 9))
    answered_at = request.local(day, 10)
    request.do(Resolve(actor=agent, resolution_code="answered", comment="Voici."), answered_at)
    assert request.waiting_timers(answered_at) == []  # answered: waits for the customer's word

    closed_at = request.local(day, 11)
    request.do(Close(actor=agent, resolution_code="answered"), closed_at)
    window_ends = request.local(day + timedelta(days=days), 11)
    assert window_ends - closed_at != timedelta(days=days)  # a 23 or 25 h day between
    assert policy.waited_until(closed_at, days) == window_ends
    late = request.refused(Reopen(actor=REQUESTER), window_ends + MINUTE)
    assert late.startswith(f"{request.state.key} was closed more than 30 days ago")
    [reopened] = request.do(Reopen(actor=REQUESTER), window_ends)
    assert isinstance(reopened, TicketReopened) and request.state.status == "assigned"
