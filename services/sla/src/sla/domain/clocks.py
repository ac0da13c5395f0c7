"""The response and resolution clocks of one ticket, read from its timeline (DOMAIN §6).

The timeline (`sla.domain.timeline`) is the status and priority of the request after each of
its events, as workflow published them with its state; sla folds no event itself.

Rules, all driven by the policy's status flags:

- **Response** runs from submission (`TicketCreated`) until the first entry into a status
  flagged `stops_response`; it never restarts, even when the ticket is reopened.
- **Resolution** starts when the ticket is taken in charge: the first entry into a status
  flagged `starts_resolution`, or the moment the response clock stops if that comes first
  (a team that answered has taken the request in charge). A policy that flags no status
  `starts_resolution` starts it at submission. It is stopped while the ticket sits in a
  status flagged `stops_resolution` and resumes, with the time already counted, when the
  ticket leaves it (a disputed resolution or a reopen continues the same clock).
- Both **pause** while the ticket is in a status flagged `pauses_sla`.
- The **target** is the policy's for the request's type and priority (`SlaPolicy.target`:
  a desk may distinguish its kinds of request). A **priority change** re-targets every clock
  that is not stopped (running, paused or not yet started); a stopped clock keeps the target
  of the priority it stopped under.
- Request types with `sla_bound: false` have no clocks.

Business time is counted on the policy's calendar (`BusinessTime`). Every reading says why
the clock is in its state, from the timeline ("paused: Waiting for customer since ...").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from desk_contracts.state import RequestState
from desk_policies.model import DeskPolicy, Status
from sla.domain.business_time import ZERO, BusinessTime, as_utc
from sla.domain.timeline import Step, Timeline

__all__ = [
    "ClockKind",
    "ClockReading",
    "ClockState",
    "HistoryError",
    "TicketClocks",
    "read_clocks",
]


class ClockKind(StrEnum):
    RESPONSE = "response"
    RESOLUTION = "resolution"


class ClockState(StrEnum):
    NOT_STARTED = "not started"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class HistoryError(ValueError):
    """The timeline cannot be read: a version missing, not ending at the latest state's, or a
    status the policy lacks."""


@dataclass(frozen=True, slots=True)
class ClockReading:
    """One clock at `now`. Durations are business time on the calendar; instants are UTC.

    `due_at` is the first instant at which the clock is breached: in the future for a
    running clock on time, in the past for a breached clock, None while paused, stopped or
    not started without having been breached. `warning_at` likewise for the warning share.
    `remaining` is negative once breached (dashboards sort by it).
    """

    kind: ClockKind
    state: ClockState
    reason: str
    since: datetime  # when the clock entered its state
    priority: str  # the priority its target comes from
    target: timedelta | None  # None: the policy has no target for this priority
    elapsed: timedelta
    remaining: timedelta | None
    due_at: datetime | None
    warning_at: datetime | None
    breached: bool


@dataclass(frozen=True, slots=True)
class TicketClocks:
    """Both clocks of a ticket at `now` (none when its request type is not SLA-bound)."""

    ticket_id: str
    version: int  # stream version of the latest state read (its creation is version 1)
    now: datetime
    status: str
    priority: str
    sla_bound: bool
    response: ClockReading | None
    resolution: ClockReading | None

    @property
    def clocks(self) -> tuple[ClockReading, ...]:
        return tuple(c for c in (self.response, self.resolution) if c is not None)


# --- the walk over the timeline ---------------------------------------------------------


@dataclass(slots=True)
class _Track:
    """What one clock did so far: counting spans, current state and why."""

    kind: ClockKind
    state: ClockState
    since: datetime
    why: str  # status label or cause shown in the reason
    spans: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    stopped_priority: str | None = None

    def move(self, state: ClockState, at: datetime, why: str, priority: str) -> None:
        if state is self.state:
            return
        if self.state is ClockState.RUNNING:
            start, _ = self.spans[-1]
            self.spans[-1] = (start, at)
        if state is ClockState.RUNNING:
            self.spans.append((at, None))
        self.stopped_priority = priority if state is ClockState.STOPPED else None
        self.state, self.since, self.why = state, at, why


def _label(status: Status, language: str) -> str:
    return status.labels.get(language)


def _running_or_paused(status: Status) -> ClockState:
    return ClockState.PAUSED if status.pauses_sla else ClockState.RUNNING


class _Walk:
    """Walks the timeline into the two clock tracks (one pass, in version order)."""

    def __init__(self, policy: DeskPolicy, created: Step, language: str) -> None:
        self.policy = policy
        self.language = language
        self.statuses = {s.id: s for s in policy.statuses}
        self.priority = created.priority
        self.status = self._status(created.status)
        at = created.at
        label = _label(self.status, language)
        self.response = _Track(ClockKind.RESPONSE, ClockState.NOT_STARTED, at, label)
        self.resolution = _Track(
            ClockKind.RESOLUTION, ClockState.NOT_STARTED, at, "waiting to be taken in charge"
        )
        self.resolution_started = not any(s.starts_resolution for s in policy.statuses)
        self._enter(self.status, at, first=True)

    def _status(self, status_id: str) -> Status:
        try:
            return self.statuses[status_id]
        except KeyError:
            raise HistoryError(
                f"status {status_id!r} is not in policy {self.policy.id!r}"
            ) from None

    def _enter(self, status: Status, at: datetime, first: bool = False) -> None:
        label = _label(status, self.language)
        response = self.response
        if response.state is not ClockState.STOPPED:
            if status.stops_response:
                response.move(ClockState.STOPPED, at, f"first response ({label})", self.priority)
                self.resolution_started = True
            else:
                response.move(_running_or_paused(status), at, label, self.priority)
        if status.starts_resolution:
            self.resolution_started = True
        if self.resolution_started:
            state = ClockState.STOPPED if status.stops_resolution else _running_or_paused(status)
            self.resolution.move(state, at, label, self.priority)
        elif not first:
            self.resolution.why = f"waiting to be taken in charge ({label})"

    def apply(self, step: Step) -> None:
        self.priority = step.priority
        if step.status != self.status.id:
            self.status = self._status(step.status)
            self._enter(self.status, step.at)


# --- readings -----------------------------------------------------------------------


def _when(instant: datetime, calendar: BusinessTime) -> str:
    return instant.astimezone(calendar.zone).strftime("%Y-%m-%d %H:%M %Z")


def _reason(track: _Track, calendar: BusinessTime) -> str:
    if track.state is ClockState.STOPPED:
        return f"stopped: {track.why} at {_when(track.since, calendar)}"
    if track.state is ClockState.NOT_STARTED:
        return f"not started: {track.why}"
    return f"{track.state}: {track.why} since {_when(track.since, calendar)}"


def _instant_reaching(
    spans: Sequence[tuple[datetime, datetime | None]],
    amount: timedelta,
    measured: Sequence[timedelta],
    calendar: BusinessTime,
) -> datetime | None:
    """First instant at which the counted spans reach `amount` (open span: extrapolated)."""
    counted = ZERO
    for (start, end), length in zip(spans, measured, strict=True):
        if end is None or counted + length >= amount:
            return calendar.add(start, amount - counted)
        counted += length
    return None


def _reading(
    track: _Track,
    policy: DeskPolicy,
    calendar: BusinessTime,
    now: datetime,
    request_type: str,
    current_priority: str,
) -> ClockReading:
    priority = track.stopped_priority or current_priority
    targets = policy.sla.target(request_type, priority)
    target: timedelta | None = None
    if targets is not None:
        minutes = targets.response if track.kind is ClockKind.RESPONSE else targets.resolution
        target = timedelta(minutes=minutes)
    measured = [
        calendar.between(start, now if end is None else min(end, now)) for start, end in track.spans
    ]
    elapsed = sum(measured, ZERO)
    due_at = warning_at = None
    breached = False
    if target is not None and track.spans:
        due_at = _instant_reaching(track.spans, target, measured, calendar)
        warning_at = _instant_reaching(
            track.spans, target * policy.sla.warning_share, measured, calendar
        )
        breached = elapsed >= target
        if not breached and track.state is not ClockState.RUNNING:
            due_at = warning_at = None
    return ClockReading(
        kind=track.kind,
        state=track.state,
        reason=_reason(track, calendar),
        since=track.since,
        priority=priority,
        target=target,
        elapsed=elapsed,
        remaining=None if target is None else target - elapsed,
        due_at=due_at,
        warning_at=warning_at,
        breached=breached,
    )


def _steps(timeline: Timeline, state: RequestState) -> tuple[Step, ...]:
    """The timeline's steps, checked to be every version from 1 to the state's."""
    missing = timeline.missing
    if missing is not None:
        raise HistoryError(f"the timeline of ticket {state.ticket_id} lacks version {missing}")
    last = timeline.steps[-1].version
    if last != state.version:
        raise HistoryError(f"the timeline ends at version {last}, the state is {state.version}")
    return timeline.steps


def read_clocks(
    timeline: Timeline,
    state: RequestState,
    policy: DeskPolicy,
    calendar: BusinessTime,
    now: datetime,
    language: str = "en",
) -> TicketClocks:
    """Both clocks of a request at `now`, from its `timeline` (every version, in order, up to
    its latest published `state`'s).

    `calendar` is the policy's `sla.calendar`; `language` picks the status labels used in
    the reasons. Steps after `now` are not expected (time is never read, only given).
    """
    steps = _steps(timeline, state)
    now = as_utc(now)
    walk = _Walk(policy, steps[0], language)
    for step in steps[1:]:
        walk.apply(step)
    kind = policy.request_type(state.request_type)
    sla_bound = kind is None or kind.sla_bound
    response = resolution = None
    if sla_bound:
        response = _reading(walk.response, policy, calendar, now, state.request_type, walk.priority)
        resolution = _reading(
            walk.resolution, policy, calendar, now, state.request_type, walk.priority
        )
    return TicketClocks(
        ticket_id=state.ticket_id,
        version=state.version,
        now=now,
        status=walk.status.id,
        priority=walk.priority,
        sla_bound=sla_bound,
        response=response,
        resolution=resolution,
    )
