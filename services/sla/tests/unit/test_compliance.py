"""SLA compliance per month and priority, as an analyst replays it from the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from desk_contracts.sla import SlaBreached
from desk_contracts.tickets import Channel, TicketCreated
from sla.domain.compliance import Creation, compliance, month_of, tally


def created(ticket: str, month: int, priority: str) -> TicketCreated:
    return TicketCreated(
        ticket_id=ticket,
        occurred_at=datetime(2026, month, 3, 9, tzinfo=UTC),
        key=f"SPT-{ticket}",
        policy_id="erp-vendor",
        request_type="support",
        priority=priority,
        subject="s",
        description="d",
        organisation_id="acme",
        requester_id="a@acme.example",
        created_by="a@acme.example",
        channel=Channel.PORTAL,
    )


def breach(ticket: str, clock: str) -> SlaBreached:
    at = datetime(2026, 4, 1, tzinfo=UTC)
    return SlaBreached(
        ticket_id=ticket, occurred_at=at, armed_version=1, due_at=at, clock=clock, priority="high"
    )  # type: ignore[arg-type]


def test_requests_count_under_their_creation_month_and_priority() -> None:
    rows = compliance(
        [
            created("1", 3, "high"),
            created("2", 3, "high"),
            created("3", 3, "low"),
            created("4", 4, "high"),
            breach("1", "response"),
            breach("1", "response"),
            breach("2", "resolution"),
            created("1", 3, "high"),  # a replayed duplicate
        ]
    )
    table = {(r.month, r.priority): r for r in rows}
    march_high = table[("2026-03", "high")]
    assert (march_high.requests, march_high.response_breached, march_high.resolution_breached) == (
        2,
        1,
        1,
    )
    assert march_high.response_kept == 0.5
    assert table[("2026-03", "low")].response_kept == 1.0
    assert table[("2026-04", "high")].requests == 1
    assert [(r.month, r.priority) for r in rows] == [
        ("2026-03", "high"),
        ("2026-03", "low"),
        ("2026-04", "high"),
    ]


def test_the_rule_takes_creations_and_breaches_told_by_any_source() -> None:
    """`tally` is what the report's projection applies (the dashboard feeds it from sla's
    tables): the first creation told counts, each clock's breach once."""
    rows = tally(
        [Creation("1", "2026-03", "high"), Creation("1", "2026-04", "low")],
        [("1", "resolution"), ("1", "resolution"), ("2", "response")],
    )
    assert [(r.month, r.priority, r.requests, r.resolution_breached) for r in rows] == [
        ("2026-03", "high", 1, 1)
    ]
    assert rows == compliance([created("1", 3, "high"), breach("1", "resolution")])


def test_a_request_counts_under_its_utc_month() -> None:
    zurich = timezone(timedelta(hours=1))
    assert month_of(datetime(2026, 4, 1, 0, 30, tzinfo=zurich)) == "2026-03"


def test_a_request_living_on_a_test_clock_is_left_out() -> None:
    on_clock = created("9", 3, "high").model_copy(update={"test_clock": "tc-demo"})
    rows = compliance([created("1", 3, "high"), on_clock, breach("9", "response")])
    [row] = rows
    assert (row.requests, row.response_breached) == (1, 0)
