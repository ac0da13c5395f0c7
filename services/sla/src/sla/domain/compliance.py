"""SLA compliance per month and priority (pure): the one projection the analyst's report
(`sla.entrypoints.compliance_report`, a replay of the event log) and the leads' dashboard
(`sla.adapters.summary_api`, sla's own tables) both compute.

Of the requests created in a month at a priority, how many kept their response and resolution
targets. A request counts under the (UTC) month and priority of its creation, once however many
times its creation is told (a replayed duplicate); a clock breached at any time counts against
it. The report replays every request created (those that are not SLA-bound have no clocks, so
they count as kept), and so does the dashboard.

The rule is `tally`, fed with each request's creation (`Creation`) and the breaches of its
clocks; `compliance` folds the log's `TicketCreated` and `SlaBreached` events into that input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from desk_contracts.base import Event
from desk_contracts.sla import SlaBreached
from desk_contracts.tickets import TicketCreated


@dataclass
class Row:
    month: str  # YYYY-MM
    priority: str
    requests: int = 0
    response_breached: int = 0
    resolution_breached: int = 0

    @property
    def response_kept(self) -> float:
        return 1 - self.response_breached / self.requests if self.requests else 1.0

    @property
    def resolution_kept(self) -> float:
        return 1 - self.resolution_breached / self.requests if self.requests else 1.0


@dataclass(frozen=True)
class Creation:
    """A request as the projection counts it: its id, and the month and priority it was
    created in (what its `TicketCreated` says)."""

    ticket_id: str
    month: str  # YYYY-MM, `month_of` its creation
    priority: str


def month_of(instant: datetime) -> str:
    """The month (YYYY-MM, in UTC) a request created at `instant` counts under."""
    return instant.astimezone(UTC).strftime("%Y-%m")


def compliance(events: Iterable[Event]) -> list[Row]:
    """The projection of a replayed log: its `TicketCreated` and `SlaBreached` events
    (others are ignored), tallied by `tally`; requests living on test clocks (test data, on
    another time) are left out, as the what-if leaves them out."""
    creations: list[Creation] = []
    breaches: list[tuple[str, str]] = []
    for event in events:
        if isinstance(event, TicketCreated) and event.test_clock is None:
            creations.append(Creation(event.ticket_id, month_of(event.occurred_at), event.priority))
        elif isinstance(event, SlaBreached):
            breaches.append((event.ticket_id, event.clock))
    return tally(creations, breaches)


def tally(creations: Iterable[Creation], breaches: Iterable[tuple[str, str]]) -> list[Row]:
    """Rows per (month, priority), sorted by both: the first creation told of each request
    counts it, and each clock (`response`, `resolution`) in `breaches` (ticket id, clock) counts
    against the request once, however many times it is told."""
    created: dict[str, tuple[str, str]] = {}
    for creation in creations:
        created.setdefault(creation.ticket_id, (creation.month, creation.priority))
    breached: dict[str, set[str]] = defaultdict(set)
    for ticket, clock in breaches:
        breached[ticket].add(clock)
    rows: dict[tuple[str, str], Row] = {}
    for ticket, key in created.items():
        row = rows.setdefault(key, Row(*key))
        row.requests += 1
        row.response_breached += "response" in breached[ticket]
        row.resolution_breached += "resolution" in breached[ticket]
    return sorted(rows.values(), key=lambda r: (r.month, r.priority))
