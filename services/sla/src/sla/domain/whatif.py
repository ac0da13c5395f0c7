"""What if: every request's SLA verdicts under the terms in force and under other terms, side
by side (pure).

The log gives each request's states as workflow published them (`desk_contracts.state`), in
the ticket's order. `Histories` gathers them, record by record, into each request's timeline
(`sla.domain.timeline`) and its latest state within a `Period`: events at or after the
period's end are left out, so a request stands as it stood then. `verdicts` reads both clocks
with the one reading of the clocks (`read_clocks`), at the request's end when it is closed,
else at the period's end (the log's last event when the period has no end), and says of each
clock whether it was kept, breached, still counting within its target (`open`) or has no
target (`not bound`). `compare` does so under two sets of `Terms` (policy and calendar per
desk), for the requests created in the period, and reports compliance per month and priority
both ways (the compliance report's own tally, `sla.domain.compliance.tally`), the requests
whose verdict would change, and the breaches both ways.

Nothing here is read from sla's tables or timers: the verdicts under the terms in force are
recomputed from the published states, the same way as the alternative's, so the two columns
differ by the terms alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from desk_contracts.state import MissingState, state_of
from desk_policies.calendars import BusinessCalendar
from desk_policies.model import DeskPolicy
from sla.domain.business_time import BusinessTime, NoBusinessHours
from sla.domain.clocks import ClockKind, ClockReading, ClockState, HistoryError, read_clocks
from sla.domain.compliance import Creation, Row, month_of, tally
from sla.domain.timeline import Step, Timeline

__all__ = [
    "Change",
    "Histories",
    "History",
    "Outcome",
    "Pairs",
    "Period",
    "RequestVerdicts",
    "SideBySide",
    "Terms",
    "UnreadableHistory",
    "Verdict",
    "WhatIf",
    "compare",
    "read_both_ways",
    "summarise",
    "terms_of",
    "verdicts",
]

CLOCKS = (ClockKind.RESPONSE, ClockKind.RESOLUTION)


class Verdict(StrEnum):
    """What became of one clock of a request."""

    KEPT = "kept"  # stopped within its target
    BREACHED = "breached"  # its target was reached (at any time)
    OPEN = "open"  # still counting or paused, within its target, when read
    UNBOUND = "not bound"  # no clock (a request type not SLA-bound) or no target


@dataclass(frozen=True, slots=True)
class Outcome:
    """One clock's verdict, with the business time it counted and its target when read."""

    verdict: Verdict
    elapsed: timedelta | None = None
    target: timedelta | None = None

    @classmethod
    def of(cls, reading: ClockReading | None) -> Outcome:
        """The outcome of a clock reading (None: the request has no clocks)."""
        if reading is None or reading.target is None:
            return cls(Verdict.UNBOUND, None if reading is None else reading.elapsed)
        if reading.breached:
            verdict = Verdict.BREACHED
        elif reading.state is ClockState.STOPPED:
            verdict = Verdict.KEPT
        else:
            verdict = Verdict.OPEN
        return cls(verdict, reading.elapsed, reading.target)


@dataclass(frozen=True, slots=True)
class Terms:
    """What one desk's clocks are measured against: its policy and its calendar."""

    policy: DeskPolicy
    calendar: BusinessTime


def terms_of(
    policies: Mapping[str, DeskPolicy], calendars: Mapping[str, BusinessCalendar]
) -> dict[str, Terms]:
    """Each desk's terms (one calendar arithmetic per calendar, shared by its desks)."""
    arithmetic: dict[str, BusinessTime] = {}
    terms = {}
    for desk, policy in policies.items():
        calendar_id = policy.sla.calendar
        if calendar_id not in arithmetic:
            arithmetic[calendar_id] = BusinessTime(calendars[calendar_id])
        terms[desk] = Terms(policy, arithmetic[calendar_id])
    return terms


@dataclass(frozen=True, slots=True)
class Period:
    """Requests created in `[start, end)` (open-ended where None); the log is read up to
    `end`."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"the period ends ({self.end}) before it starts ({self.start})")

    def holds(self, instant: datetime) -> bool:
        """Whether `instant` is in the period."""
        return (self.start is None or instant >= self.start) and (
            self.end is None or instant < self.end
        )


@dataclass(slots=True)
class History:
    """One request as the log told it: (version, at, status, priority) after each of its
    events, in order, and its latest published state (JSON data)."""

    ticket_id: str
    steps: list[tuple[int, datetime, str, str]] = field(default_factory=list)
    state: Mapping[str, Any] = field(default_factory=dict)

    @property
    def created_at(self) -> datetime:
        """When the request was created (its first step)."""
        return self.steps[0][1]

    def timeline(self) -> Timeline:
        """The request's timeline (`read_clocks`' input)."""
        return Timeline(
            tuple(Step(v, at.astimezone(UTC), status, prio) for v, at, status, prio in self.steps)
        )


class Histories:
    """The requests' histories gathered from the log, one published state at a time, up to the
    period's end. A state told again (a replayed duplicate: a version already seen) is skipped;
    one that cannot be read (no ticket id, version or time) is counted and skipped, and so is
    one of a request living on a test clock (`on_test_clocks`: test data, on another time)."""

    __slots__ = (
        "_end",
        "duplicates",
        "last_at",
        "log_ends_at",
        "on_test_clocks",
        "records",
        "requests",
        "unreadable",
    )

    def __init__(self, period: Period = Period()) -> None:
        self._end = period.end
        self.requests: dict[str, History] = {}
        self.records = 0
        self.duplicates = 0
        self.unreadable = 0
        self.on_test_clocks = 0
        self.last_at: datetime | None = None  # the latest event kept
        self.log_ends_at: datetime | None = None  # the latest event read, kept or not

    def add(self, state: Mapping[str, Any]) -> None:
        """One published state (the `request-state` header's or the store's JSON data)."""
        self.add_all((state,))

    def add_all(self, states: Iterable[Mapping[str, Any]]) -> None:
        """Published states in the log's order (the hot loop of a replay: kept lean)."""
        requests, end, parse = self.requests, self._end, datetime.fromisoformat
        last_at, log_ends_at = self.last_at, self.log_ends_at
        records = duplicates = unreadable = on_test_clocks = 0
        for state in states:
            records += 1
            if state.get("test_clock") is not None:
                on_test_clocks += 1
                continue
            try:
                ticket = state["ticket_id"]
                version = state["version"]
                at = parse(state["updated_at"])
                step = (version, at, state["status"], state["priority"])
            except (KeyError, TypeError, ValueError):
                unreadable += 1
                continue
            if log_ends_at is None or at > log_ends_at:
                log_ends_at = at
            if end is not None and at >= end:
                continue
            history = requests.get(ticket)
            if history is None:
                history = requests[ticket] = History(ticket)
            elif version <= history.steps[-1][0]:
                duplicates += 1
                continue
            history.steps.append(step)
            history.state = state
            if last_at is None or at > last_at:
                last_at = at
        self.last_at, self.log_ends_at = last_at, log_ends_at
        self.records += records
        self.duplicates += duplicates
        self.unreadable += unreadable
        self.on_test_clocks += on_test_clocks


@dataclass(frozen=True, slots=True)
class RequestVerdicts:
    """A request's two clocks' verdicts under one set of terms, read at `read_at`."""

    ticket_id: str
    key: str
    desk: str
    request_type: str
    priority: str  # at its creation (the month and priority it counts under)
    status: str  # when read
    organisation_id: str
    created_at: datetime
    closed_at: datetime | None
    read_at: datetime
    response: Outcome
    resolution: Outcome

    @property
    def month(self) -> str:
        """The month (YYYY-MM, UTC) the request counts under."""
        return month_of(self.created_at)

    def outcome(self, clock: ClockKind) -> Outcome:
        """The outcome of `clock`."""
        return self.response if clock is ClockKind.RESPONSE else self.resolution


class UnreadableHistory(ValueError):
    """A request whose clocks cannot be read: its state is invalid, its desk unknown, a version
    missing, or its calendar without business hours."""


def verdicts(history: History, terms: Mapping[str, Terms], until: datetime) -> RequestVerdicts:
    """The request's verdicts under `terms`, read at its end if it is closed, else at `until`
    (not before its last event)."""
    try:
        state = state_of(history.state)
    except MissingState as error:
        raise UnreadableHistory(str(error)) from None
    desk = terms.get(state.policy_id)
    if desk is None:
        raise UnreadableHistory(f"desk {state.policy_id!r} has no policy here")
    last = history.steps[-1][1]
    read_at = last if state.category == "closed" else max(until, last)
    try:
        clocks = read_clocks(history.timeline(), state, desk.policy, desk.calendar, read_at)
    except (HistoryError, NoBusinessHours) as error:
        raise UnreadableHistory(str(error)) from None
    return RequestVerdicts(
        ticket_id=state.ticket_id,
        key=state.key,
        desk=state.policy_id,
        request_type=state.request_type,
        priority=history.steps[0][3],
        status=state.status,
        organisation_id=state.organisation_id,
        created_at=history.created_at.astimezone(UTC),
        closed_at=state.closed_at,
        read_at=read_at,
        response=Outcome.of(clocks.response),
        resolution=Outcome.of(clocks.resolution),
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A clock of a request whose verdict differs under the alternative terms."""

    clock: ClockKind
    now: RequestVerdicts
    alternative: RequestVerdicts

    @property
    def before(self) -> Outcome:
        """The clock's outcome under the terms in force."""
        return self.now.outcome(self.clock)

    @property
    def after(self) -> Outcome:
        """The clock's outcome under the alternative terms."""
        return self.alternative.outcome(self.clock)


@dataclass(frozen=True, slots=True)
class SideBySide:
    """Compliance of the requests created in one month at one priority, both ways."""

    month: str
    priority: str
    now: Row
    alternative: Row

    @property
    def requests(self) -> int:
        """The requests created that month at that priority."""
        return self.now.requests


@dataclass(frozen=True)
class WhatIf:
    """The comparison: compliance rows, changed verdicts (breached first), breaches per clock
    both ways, and the requests that could not be read (ticket id, why)."""

    rows: tuple[SideBySide, ...]
    changes: tuple[Change, ...]
    breaches_now: dict[ClockKind, int]
    breaches_alternative: dict[ClockKind, int]
    requests: int
    unreadable: tuple[tuple[str, str], ...] = ()
    read_until: datetime | None = None

    def breach_difference(self, clock: ClockKind) -> int:
        """Breaches under the alternative less breaches now (negative: fewer breaches)."""
        return self.breaches_alternative[clock] - self.breaches_now[clock]


def _breaches(verdicts: Iterable[RequestVerdicts]) -> list[tuple[str, str]]:
    return [
        (v.ticket_id, clock.value)
        for v in verdicts
        for clock in CLOCKS
        if v.outcome(clock).verdict is Verdict.BREACHED
    ]


def _same_terms(now: Mapping[str, Terms], alternative: Mapping[str, Terms]) -> set[str]:
    return {
        desk
        for desk, terms in now.items()
        if desk in alternative
        and alternative[desk].policy == terms.policy
        and alternative[desk].calendar.calendar == terms.calendar.calendar
    }


Pair = tuple[RequestVerdicts, RequestVerdicts]  # a request's verdicts now and under the other


@dataclass(frozen=True)
class Pairs:
    """The requests read both ways (`read_both_ways`), and those that could not be read
    (ticket id, why)."""

    pairs: list[Pair]
    unreadable: list[tuple[str, str]]


def read_both_ways(
    histories: Iterable[History],
    now: Mapping[str, Terms],
    alternative: Mapping[str, Terms],
    until: datetime,
    period: Period = Period(),
    desks: Collection[str] | None = None,
) -> Pairs:
    """Each request created in `period` (of `desks`, when given) read under `now` and
    `alternative` (a desk whose terms are the same is read once). The requests are read one
    by one, so parts of the log may be read apart (on several cores) and joined."""
    same = _same_terms(now, alternative)
    pairs: list[Pair] = []
    unreadable: list[tuple[str, str]] = []
    for history in histories:
        if not history.steps or not period.holds(history.created_at):
            continue
        desk = history.state.get("policy_id")
        if desks is not None and desk not in desks:
            continue
        try:
            before = verdicts(history, now, until)
            after = before if desk in same else verdicts(history, alternative, until)
        except UnreadableHistory as error:
            unreadable.append((history.ticket_id, str(error)))
            continue
        pairs.append((before, after))
    return Pairs(pairs, unreadable)


def compare(
    histories: Iterable[History],
    now: Mapping[str, Terms],
    alternative: Mapping[str, Terms],
    until: datetime,
    period: Period = Period(),
    desks: Collection[str] | None = None,
) -> WhatIf:
    """Each request created in `period` (of `desks`, when given) read under `now` and
    `alternative` (`read_both_ways`), then compared (`summarise`)."""
    return summarise(read_both_ways(histories, now, alternative, until, period, desks), until)


def summarise(read: Pairs, until: datetime) -> WhatIf:
    """The comparison of the requests read both ways: compliance rows, changes, breaches."""
    pairs = read.pairs
    creations = [Creation(v.ticket_id, v.month, v.priority) for v, _ in pairs]
    rows_now = tally(creations, _breaches(v for v, _ in pairs))
    rows_alternative = {
        (r.month, r.priority): r for r in tally(creations, _breaches(a for _, a in pairs))
    }
    rows = tuple(
        SideBySide(r.month, r.priority, r, rows_alternative[(r.month, r.priority)])
        for r in rows_now
    )
    changes = [
        Change(clock, before, after)
        for before, after in pairs
        for clock in CLOCKS
        if before.outcome(clock).verdict is not after.outcome(clock).verdict
    ]
    changes.sort(
        key=lambda c: (c.after.verdict is not Verdict.BREACHED, c.now.created_at, c.now.key)
    )

    def count(side: int) -> dict[ClockKind, int]:
        """Breaches per clock on one side (0: now, 1: the alternative)."""
        return {
            clock: sum(pair[side].outcome(clock).verdict is Verdict.BREACHED for pair in pairs)
            for clock in CLOCKS
        }

    return WhatIf(
        rows=rows,
        changes=tuple(changes),
        breaches_now=count(0),
        breaches_alternative=count(1),
        requests=len(pairs),
        unreadable=tuple(read.unreadable),
        read_until=until,
    )
