"""When an SLA warning or breach is told (pure): once the request's state is kept at the version
its timer was armed at, behind any earlier one of the request still waiting, and never too late
(a warning at or after its breach, any of them more than two days after sla published it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk_contracts.sla import SlaBreached, SlaWarningReached
from notifier.application.sla_events import TELL_WITHIN, outdated, waiting_reason

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WARNING = SlaWarningReached(
    ticket_id="t-1", occurred_at=NOW, armed_version=4, due_at=NOW, clock="response",
    priority="high", breach_at=NOW + timedelta(hours=1),
)  # fmt: skip
BREACH = SlaBreached(
    ticket_id="t-1", occurred_at=NOW, armed_version=4, due_at=NOW, clock="resolution",
    priority="low",
)  # fmt: skip


@pytest.mark.parametrize(
    ("kept", "behind", "reason"),
    [
        (None, False, "request t-1 not known yet (its state comes with its ticket events)"),
        (3, False, "request t-1 known at version 3, the timer was armed at version 4"),
        (4, True, "behind an earlier SLA event of request t-1 that still waits"),
        (None, True, "behind an earlier SLA event of request t-1 that still waits"),
        (4, False, None),
        (9, False, None),
    ],
)
def test_an_sla_event_waits_for_its_requests_state_and_for_those_before_it(
    kept: int | None, behind: bool, reason: str | None
) -> None:
    for event in (WARNING, BREACH):
        assert waiting_reason(event, kept, behind) == reason


def test_a_warning_is_told_before_its_breach_and_none_later_than_two_days() -> None:
    assert outdated(WARNING, NOW, NOW + timedelta(minutes=59)) is None
    assert outdated(WARNING, NOW, NOW + timedelta(hours=1)) == "told after the breach it announces"
    assert outdated(BREACH, NOW, NOW + TELL_WITHIN) is None
    late = NOW + TELL_WITHIN + timedelta(seconds=1)
    assert outdated(BREACH, NOW, late) == "published more than 2 days ago"


def test_lateness_is_real_time_since_publication_whatever_time_the_request_lives_on() -> None:
    """A request on a test clock set months back: its warning, published now, is told now."""
    months = timedelta(days=90)
    back = WARNING.model_copy(
        update={"occurred_at": NOW - months, "breach_at": NOW - months + timedelta(hours=1)}
    )
    assert outdated(back, NOW, NOW + timedelta(minutes=5)) is None
    assert outdated(back, NOW, NOW + timedelta(hours=1)) == "told after the breach it announces"
    ahead = BREACH.model_copy(update={"occurred_at": NOW + months})
    assert outdated(ahead, NOW, NOW + TELL_WITHIN + timedelta(seconds=1)) is not None
