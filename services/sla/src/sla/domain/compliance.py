"""SLA compliance per month and priority, from a replay of the event log (pure).

The analyst's classic read model: of the SLA-bound requests created in a month at a priority,
how many kept their response and resolution targets. A request counts under the month and
priority of its creation; a clock breached at any time counts against it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

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


def compliance(events: Iterable[Event]) -> list[Row]:
    created: dict[str, tuple[str, str]] = {}
    breached: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if isinstance(event, TicketCreated):
            created.setdefault(
                event.ticket_id, (event.occurred_at.strftime("%Y-%m"), event.priority)
            )
        elif isinstance(event, SlaBreached):
            breached[event.ticket_id].add(event.clock)
    rows: dict[tuple[str, str], Row] = {}
    for ticket, key in created.items():
        row = rows.setdefault(key, Row(*key))
        row.requests += 1
        row.response_breached += "response" in breached[ticket]
        row.resolution_breached += "resolution" in breached[ticket]
    return sorted(rows.values(), key=lambda r: (r.month, r.priority))
