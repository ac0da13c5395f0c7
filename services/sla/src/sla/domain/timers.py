"""The next instants at which the sla service must act on a ticket, computed from its history.

The sla service stores these timers and fires them; it computes nothing itself. After
every event of a ticket it asks again and *replaces* the ticket's pending timers, so each
timer carries the ticket version it was armed at (`armed_version`, the version of the
last event read): a command fired from a timer armed at an older version is stale and the
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
  N days later in the calendar's time zone (a day across a DST change is 23 or 25 hours),
  counted from the *anchor*: the moment the ticket entered a watched status, moved to
  *another* watched status, or was last changed by a person (any event whose actor is not
  `system`: a requester's answer, which also moves it back to In progress, or an agent's
  comment). The automation's own reminders (`ReminderSent`) do not restart the count, so
  the second reminder comes N2 days after the anchor, not N2 days after the first one.
  Reminders already sent since the anchor (`ReminderSent.days_waiting`) are not re-armed.

Each timer has an `occurrence`: a key that names the same happening across recomputations
(e.g. `response:warning:high`, `reminder:10d:v7`). The service keeps the occurrences it
has fired and passes them back as `fired`, so an SLA warning or breach is emitted once per
clock and target even though the ticket moves on. `command_id` is the deterministic id of
the command a timer fires: `uuid5(ticket, occurrence, armed_version)`.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from desk_contracts.base import Event
from desk_contracts.tickets import ActedEvent, ReminderSent, StatusChanged, TicketCreated
from desk_policies.model import DeskPolicy
from sla.domain.business_time import BusinessTime, as_utc
from sla.domain.clocks import ClockReading, ClockState, TicketClocks, read_clocks

__all__ = ["TIMER_NAMESPACE", "Timer", "TimerKind", "plan_timers", "waiting_anchor"]

TIMER_NAMESPACE = uuid.UUID("5b2f7d0e-9a51-4d8e-a3c4-6f1e2d7c8b90")
SYSTEM = "system"


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


def waiting_anchor(
    history: Sequence[Event], watched: Collection[str], initial_status: str
) -> tuple[int, datetime] | None:
    """Version and instant from which waiting days count, or None if not in a watched status."""
    status = initial_status
    anchor: tuple[int, datetime] | None = None
    for version, event in enumerate(history, start=1):
        if isinstance(event, TicketCreated):
            anchor = (version, event.occurred_at) if status in watched else None
        elif isinstance(event, StatusChanged) and event.to_status != status:
            status = event.to_status
            anchor = (version, event.occurred_at) if status in watched else None
        elif anchor is not None and isinstance(event, ActedEvent) and event.actor_role != SYSTEM:
            anchor = (version, event.occurred_at)
    if anchor is not None:
        return anchor[0], as_utc(anchor[1])
    return anchor


def _automation_timers(
    history: Sequence[Event], policy: DeskPolicy, calendar: BusinessTime, ticket_id: str
) -> list[Timer]:
    automations = policy.automations
    watched = set(automations.statuses)
    if not watched:
        return []
    anchor = waiting_anchor(history, watched, policy.initial_status)
    if anchor is None:
        return []
    anchor_version, anchor_at = anchor
    sent = {e.days_waiting for e in history[anchor_version:] if isinstance(e, ReminderSent)}
    version = len(history)
    timers = [
        Timer(
            ticket_id=ticket_id,
            kind=TimerKind.REMINDER,
            fire_at=policy.waited_until(anchor_at, days),
            armed_version=version,
            occurrence=f"reminder:{days}d:v{anchor_version}",
            days_waiting=days,
        )
        for days in automations.reminder_days
        if days not in sent
    ]
    if automations.auto_close_days is not None:
        days = automations.auto_close_days
        timers.append(
            Timer(
                ticket_id=ticket_id,
                kind=TimerKind.AUTO_CLOSE,
                fire_at=policy.waited_until(anchor_at, days),
                armed_version=version,
                occurrence=f"auto_close:{days}d:v{anchor_version}",
                days_waiting=days,
            )
        )
    return timers


# --- the plan -------------------------------------------------------------------------------


def plan_timers(
    history: Sequence[Event],
    policy: DeskPolicy,
    calendar: BusinessTime,
    now: datetime,
    *,
    office_hours: BusinessTime | None = None,
    fired: Collection[str] = (),
    clocks: TicketClocks | None = None,
) -> tuple[Timer, ...]:
    """Every pending timer of the ticket, ordered by `fire_at` (occurrences in `fired` left out).

    `calendar` is the SLA calendar (also the zone in which waiting days are counted);
    `office_hours` the hours in which non-critical warnings may be sent (default: the SLA
    calendar). `clocks` may pass an already computed `read_clocks` result for `now`.
    """
    if clocks is None:
        clocks = read_clocks(history, policy, calendar, now)
    urgent = clocks.priority == policy.priorities[-1].id
    timers = _sla_timers(clocks, office_hours or calendar, urgent)
    timers += _automation_timers(history, policy, calendar, clocks.ticket_id)
    pending = (t for t in timers if t.occurrence not in fired)
    return tuple(sorted(pending, key=lambda t: (t.fire_at, t.kind, t.occurrence)))
