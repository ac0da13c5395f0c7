"""The next instants at which the sla service must act on a ticket, from its published state.

The sla service stores these timers and fires them; it computes nothing itself. After
every event of a ticket it asks again and *replaces* the ticket's pending timers, so each
timer carries the ticket version it was armed at (`armed_version`, the version of the
latest state read): a command fired from a timer armed at an older version is stale and the
workflow ignores it. A timer whose instant has passed fires at once (e.g. after downtime).

Timers
------
- `sla_warning` / `sla_breach` for each *running* clock, at its warning and due instants.
  Warnings are escalation mail: they are sent inside the office hours (by default the
  SLA calendar) unless the ticket has the policy's highest priority (critical), so nobody
  is paged at night for a low-priority ticket (DOMAIN §9). A warning deferred past the
  breach is dropped: the breach says it all. Breaches fire exactly when due.
- `reminder` and `auto_close` while the ticket sits in a status the policy's automations
  watch (waiting for the customer). Interpretation of the seeds' "N jours sans réponse" /
  "non modifiés depuis N jours": N **calendar days**, i.e. the same local wall-clock time
  N days later in the desk's time zone (a day across a DST change is 23 or 25 hours:
  `DeskPolicy.waited_until`, the rule workflow accepts the commands by), counted from the
  *anchor* the published state gives (`waiting_since`, the version of its event
  `waiting_version`): the moment the ticket entered a watched status, moved to *another*
  watched status, or was last changed by a person (any event whose actor is not `system`: a
  requester's answer, which also moves it back to In progress, or an agent's comment). The
  automation's own reminders (`ReminderSent`) do not restart the count, so the second
  reminder comes N2 days after the anchor, not N2 days after the first one. Reminders
  already sent since the anchor (the state's `reminders_sent`) are not re-armed.

Each timer has an `occurrence`: a key that names the same happening across recomputations
(e.g. `response:warning:high`, `reminder:10d:v7`). The service keeps the occurrences it
has fired and passes them back as `fired`, so an SLA warning or breach is emitted once per
clock and target even though the ticket moves on. `command_id` is the deterministic id of
the command a timer fires: `uuid5(ticket, occurrence, armed_version)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from desk_contracts.state import RequestState
from desk_policies.model import DeskPolicy
from sla.domain.business_time import BusinessTime, as_utc
from sla.domain.clocks import ClockReading, ClockState, TicketClocks, read_clocks
from sla.domain.timeline import Timeline

__all__ = ["TIMER_NAMESPACE", "Timer", "TimerKind", "plan_timers"]

TIMER_NAMESPACE = uuid.UUID("5b2f7d0e-9a51-4d8e-a3c4-6f1e2d7c8b90")


class TimerKind(StrEnum):
    SLA_WARNING = "sla_warning"
    SLA_BREACH = "sla_breach"
    REMINDER = "reminder"
    AUTO_CLOSE = "auto_close"


@dataclass(frozen=True, slots=True)
class Timer:
    """Something to do on a ticket at `fire_at` (UTC), valid while it is at `armed_version`."""

    ticket_id: str
    kind: TimerKind
    fire_at: datetime
    armed_version: int
    occurrence: str
    clock: str | None = None  # response / resolution for SLA timers
    days_waiting: int | None = None  # for reminders and auto-close

    @property
    def command_id(self) -> uuid.UUID:
        return uuid.uuid5(
            TIMER_NAMESPACE, f"{self.ticket_id}/{self.occurrence}/{self.armed_version}"
        )


# --- SLA warnings and breaches ------------------------------------------------------------


def _sla_timers(
    clocks: TicketClocks,
    office_hours: BusinessTime,
    urgent: bool,
) -> list[Timer]:
    timers: list[Timer] = []
    for clock in clocks.clocks:
        timers.extend(_clock_timers(clocks, clock, office_hours, urgent))
    return timers


def _clock_timers(
    clocks: TicketClocks, clock: ClockReading, office_hours: BusinessTime, urgent: bool
) -> list[Timer]:
    if clock.state is not ClockState.RUNNING or clock.due_at is None:
        return []
    key = f"{clock.kind}:%s:{clock.priority}"
    breach = Timer(
        ticket_id=clocks.ticket_id,
        kind=TimerKind.SLA_BREACH,
        fire_at=clock.due_at,
        armed_version=clocks.version,
        occurrence=key % "breach",
        clock=str(clock.kind),
    )
    timers = [breach]
    if clock.warning_at is not None:
        send_at = clock.warning_at if urgent else office_hours.next_open(clock.warning_at)
        if send_at < clock.due_at:
            timers.append(
                Timer(
                    ticket_id=clocks.ticket_id,
                    kind=TimerKind.SLA_WARNING,
                    fire_at=send_at,
                    armed_version=clocks.version,
                    occurrence=key % "warning",
                    clock=str(clock.kind),
                )
            )
    return timers


# --- reminders and auto-close while waiting for the customer -------------------------------


def _automation_timers(state: RequestState, policy: DeskPolicy) -> list[Timer]:
    """The reminders not sent yet and the automatic close, while the request waits."""
    if state.waiting_since is None:
        return []
    since = as_utc(state.waiting_since)
    automations = policy.automations
    due = [
        (TimerKind.REMINDER, days)
        for days in automations.reminder_days
        if days not in state.reminders_sent
    ]
    if automations.auto_close_days is not None:
        due.append((TimerKind.AUTO_CLOSE, automations.auto_close_days))
    return [
        Timer(
            ticket_id=state.ticket_id,
            kind=kind,
            fire_at=policy.waited_until(since, days),
            armed_version=state.version,
            occurrence=f"{kind}:{days}d:v{state.waiting_version}",
            days_waiting=days,
        )
        for kind, days in due
    ]


# --- the plan -------------------------------------------------------------------------------


def plan_timers(
    timeline: Timeline,
    state: RequestState,
    policy: DeskPolicy,
    calendar: BusinessTime,
    now: datetime,
    *,
    office_hours: BusinessTime | None = None,
    fired: Collection[str] = (),
    clocks: TicketClocks | None = None,
) -> tuple[Timer, ...]:
    """Every pending timer of the request whose `timeline` ends at its latest published `state`,
    ordered by `fire_at` (occurrences in `fired` left out).

    `calendar` is the SLA calendar; `office_hours` the hours in which non-critical warnings
    may be sent (default: the SLA calendar). `clocks` may pass an already computed
    `read_clocks` result for `now`.
    """
    if clocks is None:
        clocks = read_clocks(timeline, state, policy, calendar, now)
    urgent = clocks.priority == policy.priorities[-1].id
    timers = _sla_timers(clocks, office_hours or calendar, urgent)
    timers += _automation_timers(state, policy)
    pending = (t for t in timers if t.occurrence not in fired)
    return tuple(sorted(pending, key=lambda t: (t.fire_at, t.kind, t.occurrence)))
