"""A request at any instant, and who changed what on it (pure).

**As of an instant.** A request's past state is its stream folded, with the one fold
(`desk_policies.requests.evolve`), up to the instant: the events of its stream, in version
order, as long as each happened (`occurred_at`) at or before it (`count_until`). A stream is
cut once, at the first event after the instant: should the clocks of two writers disagree and
an event carry an earlier time than the one before it, what follows the cut is not shown, so a
past view is always a state the request really had (the one at the last version shown).

**The audit.** Each event is compared, field by field, with the state the one fold gives before
and after it (`changes`): status, priority, assignee, group, participants (added, removed) and
resolution code, and, at creation, the qualification details it was filed with (product
version, company, contact, error message). Each change is one row with the version, when, the
event that made it, who (actor and role), the field's old and new value, and the reason or
comment the event carries. A comment alone changes no field: it is in the request's history,
not in its audit.

**Instants and CSV.** An instant given from outside is parsed by the one rule of instants
(`desk_contracts.inputs.instant`). The CSV export (`csv_text`) is UTF-8, every cell that a
spreadsheet would read as a
formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) prefixed with `'`
(`safe_cell`), so that an export opened in a spreadsheet runs nothing a requester wrote.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from desk_contracts.base import Event
from desk_contracts.tickets import ActedEvent, TicketCreated
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve

QUALIFICATION = ("product_version", "company", "contact", "error_message")  # of TicketCreated
REASONS = ("reason", "comment")  # the fields of events that say why
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = (
    "key", "version", "occurred_at", "event", "actor_id", "actor_role", "field", "old", "new",
    "reason",
)  # fmt: skip


def count_until(instants: Iterable[datetime], as_of: datetime) -> int:
    """How many of a stream's events (their instants, in version order) the request had at
    `as_of`: those up to the first that happened after it (see module)."""
    count = 0
    for at in instants:
        if at > as_of:
            break
        count += 1
    return count


def fold_until(policy: DeskPolicy, ticket_id: str, events: Iterable[Event]) -> Ticket:
    """The request after `events` (its stream's first ones), with the one fold."""
    state = Ticket.blank(policy, ticket_id)
    for event in events:
        state = evolve(state, event)
    return state


@dataclass(frozen=True, slots=True)
class Change:
    """One field changed by one event of a request (see module); `old` and `new` as text, None
    when the field had or has no value."""

    key: str
    version: int
    occurred_at: datetime
    event: str
    actor_id: str
    actor_role: str
    field: str
    old: str | None
    new: str | None
    reason: str | None

    def row(self) -> dict[str, Any]:
        """The change as a JSON object (the columns of `COLUMNS`)."""
        return {
            "key": self.key,
            "version": self.version,
            "occurred_at": self.occurred_at.isoformat(),
            "event": self.event,
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "field": self.field,
            "old": self.old,
            "new": self.new,
            "reason": self.reason,
        }


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _fields(state: Ticket) -> dict[str, Any]:
    """The audited fields of a state (see module)."""
    return {
        "status": state.status,
        "priority": state.priority or None,
        "assignee_id": state.assignee_id,
        "group_id": state.group_id,
        "resolution_code": state.resolution_code,
    }


def _who(event: Event) -> tuple[str, str]:
    if isinstance(event, ActedEvent):
        return event.actor_id, event.actor_role
    if isinstance(event, TicketCreated):
        return event.created_by, event.created_by_role
    return "system", "system"


def _reason(event: Event) -> str | None:
    for name in REASONS:
        value = getattr(event, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _event_changes(before: Ticket, after: Ticket, event: Event) -> list[Change]:
    """The field changes `event` made, taking the request from `before` to `after`."""
    actor, role = _who(event)
    reason = _reason(event)
    pairs: list[tuple[str, Any, Any]] = []
    old_fields, new_fields = _fields(before), _fields(after)
    pairs += [(f, old_fields[f], new) for f, new in new_fields.items() if new != old_fields[f]]
    pairs += [("participants", None, p) for p in sorted(after.participants - before.participants)]
    pairs += [("participants", p, None) for p in sorted(before.participants - after.participants)]
    if isinstance(event, TicketCreated):
        pairs += [(f, None, getattr(event, f)) for f in QUALIFICATION if getattr(event, f)]
    return [
        Change(
            after.key, after.version, event.occurred_at, event.event_type, actor, role, field,
            _text(old), _text(new), reason,
        )
        for field, old, new in pairs
    ]  # fmt: skip


def changes(policy: DeskPolicy, ticket_id: str, events: Sequence[Event]) -> list[Change]:
    """Every field change the `events` of a request's stream (from its creation, in order)
    made, oldest first (see module)."""
    found: list[Change] = []
    before = Ticket.blank(policy, ticket_id)
    for event in events:
        after = evolve(before, event)
        found += _event_changes(before, after, event)
        before = after
    return found


def within(found: Iterable[Change], start: datetime, end: datetime) -> list[Change]:
    """The changes made from `start` (included) to `end` (excluded)."""
    return [c for c in found if start <= c.occurred_at < end]


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: empty for None, and `'` before what it would
    read as a formula (see module)."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """`rows` as CSV (a header of `columns`, then one line a row, every cell `safe_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(column)) for column in columns])
    return out.getvalue()
