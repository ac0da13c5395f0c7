"""What the console reads of a past view's instant and of an audit's period (pure): a
`datetime-local` value in the person's time zone, bounded to the years workflow reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portal.adapters.agent_request import past_instant
from portal.adapters.audit_pages import period_of


def test_the_instant_typed_is_read_in_the_person_s_time_zone() -> None:
    assert past_instant("2026-03-02T15:20", "Europe/Zurich") == datetime(
        2026, 3, 2, 14, 20, tzinfo=UTC
    )
    assert past_instant("2026-07-02T15:20:30", "Europe/Zurich") == datetime(
        2026, 7, 2, 13, 20, 30, tzinfo=UTC
    )  # summer time


@pytest.mark.parametrize(
    "typed", ["", "now", "2026-02-30T10:00", "1999-12-31T23:59", "3000-01-01T00:00", "2026-03-02"]
)
def test_what_is_not_an_instant_of_the_desk_s_years_gives_no_past_view(typed: str) -> None:
    assert past_instant(typed, "Europe/Zurich") is None


def test_a_period_names_the_field_at_fault() -> None:
    since, until, errors = period_of("2026-03-02T00:00", "2026-03-03T00:00", "UTC")
    assert (since, until, errors) == (
        datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 3, tzinfo=UTC), {}
    )  # fmt: skip
    assert period_of("x", "2026-03-03T00:00", "UTC")[2] == {"from": "audit.error.instant"}
    reversed_ = period_of("2026-03-03T00:00", "2026-03-02T00:00", "UTC")[2]
    assert reversed_ == {"to": "audit.error.reversed"}
    assert period_of("", "", "UTC") == (None, None, {})
