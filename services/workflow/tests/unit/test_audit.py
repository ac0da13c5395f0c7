"""The pure parts of a request's past: reading an instant, the cut at it, the audit's rows and
its CSV (safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from desk_contracts.tickets import Channel, PriorityChanged, TicketCreated, WorkStarted
from desk_policies.loader import load_policies
from workflow.adapters.history_api import wants_csv
from workflow.domain.audit import (
    changes,
    count_until,
    csv_text,
    fold_until,
    safe_cell,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = load_policies()["cloud-partner"]


def test_the_cut_keeps_the_events_up_to_the_first_one_after_the_instant() -> None:
    at = [T0, T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert count_until(at, T0 - timedelta(seconds=1)) == 0
    assert count_until(at, T0) == 1  # exactly at an event's time: it happened
    assert count_until(at, T0 + timedelta(minutes=90)) == 2
    assert count_until(at, T0 + timedelta(days=9)) == 3
    skewed = [T0, T0 + timedelta(hours=2), T0 + timedelta(hours=1)]  # clocks that disagree
    assert count_until(skewed, T0 + timedelta(minutes=90)) == 1  # never a state it never had


def _story() -> list[object]:
    created = TicketCreated(
        ticket_id="t-1", occurred_at=T0, key="SUP-1", policy_id="cloud-partner",
        request_type="support", priority="high", subject="s", description="d",
        organisation_id="acme", requester_id="anne@acme.example",
        created_by="anne@acme.example", channel=Channel.PORTAL, participants=("bob@acme.example",),
    )  # fmt: skip
    started = WorkStarted(
        ticket_id="t-1", occurred_at=T0 + timedelta(hours=1), actor_id="paul@desk.example",
        actor_role="agent", from_status="submitted", to_status="in_progress",
    )  # fmt: skip
    lowered = PriorityChanged(
        ticket_id="t-1", occurred_at=T0 + timedelta(hours=2), actor_id="paul@desk.example",
        actor_role="agent", from_priority="high", to_priority="low", reason="workaround",
    )  # fmt: skip
    return [created, started, lowered]


def test_the_audit_is_each_field_the_one_fold_changed_with_who_and_why() -> None:
    events = _story()
    found = changes(POLICY, "t-1", events)  # type: ignore[arg-type]
    assert [(c.version, c.field, c.old, c.new, c.actor_id, c.reason) for c in found] == [
        (1, "status", None, "submitted", "anne@acme.example", None),
        (1, "priority", None, "high", "anne@acme.example", None),
        (1, "participants", None, "bob@acme.example", "anne@acme.example", None),
        (2, "status", "submitted", "in_progress", "paul@desk.example", None),
        (3, "priority", "high", "low", "paul@desk.example", "workaround"),
    ]
    then = fold_until(POLICY, "t-1", events[:2])  # type: ignore[arg-type]
    assert (then.status, then.priority, then.version) == ("in_progress", "high", 2)


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+33 1 23", "'+33 1 23"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Léa a=b", "Léa a=b"),
        (None, ""),
        (3, "3"),
    ],
)
def test_a_cell_that_a_spreadsheet_would_run_is_text(cell: object, safe: str) -> None:
    assert safe_cell(cell) == safe


def test_the_csv_quotes_what_needs_it_and_keeps_utf_8() -> None:
    text = csv_text([{"a": 'dit "non", puis\n=1+1', "b": "éè"}], columns=("a", "b"))
    assert list(csv.reader(io.StringIO(text))) == [["a", "b"], ['dit "non", puis\n=1+1', "éè"]]
    assert csv_text([{"a": "=1"}], columns=("a",)).splitlines()[1] == "'=1"


@pytest.mark.parametrize(
    ("format", "accept", "as_csv"),
    [
        (None, None, False),
        ("csv", None, True),
        ("json", "text/csv", False),
        (None, "text/csv", True),
        (None, "text/csv;q=0.9, application/json", True),
        (None, "application/json, text/csv", False),
        (None, "*/*", False),
    ],
)
def test_csv_is_asked_by_format_or_by_accept(
    format: str | None, accept: str | None, as_csv: bool
) -> None:
    assert wants_csv(format, accept) is as_csv
