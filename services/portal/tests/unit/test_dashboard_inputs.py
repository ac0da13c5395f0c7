"""The dashboard's month choice (bounded, ASCII digits only) and how its figures are written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from portal.adapters.dashboard import decimal, month_choice, next_month, percent

NOW = datetime(2026, 3, 14, 10, 0, tzinfo=UTC)


def test_the_current_month_unless_another_is_asked() -> None:
    assert month_choice(None, NOW) == "2026-03"
    assert month_choice("", NOW) == "2026-03"
    assert month_choice("2026-02", NOW) == "2026-02"
    assert month_choice("2000-01", NOW) == "2000-01"
    early = datetime(2026, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert month_choice(None, early) == "2026-03"  # the month in UTC, as the report counts


@pytest.mark.parametrize(
    "asked",
    ["2026-04", "1999-12", "2026-13", "2026-00", "2026-3", "26-03", "2026-0\u00b3",
     "\uff12\uff10\uff12\uff16-03", "2026-03\x00", "2026-03 ", " 2026-03", "x" * 10_000],
)  # fmt: skip
def test_a_month_out_of_bounds_or_not_one_is_refused(asked: str) -> None:
    assert month_choice(asked, NOW) is None


def test_months_before_and_after() -> None:
    assert next_month("2026-12") == "2027-01"
    assert next_month("2026-01", -1) == "2025-12"
    assert next_month("2026-03", -14) == "2025-01"


def test_figures_are_written_as_each_language_writes_them() -> None:
    assert percent(2 / 3, "fr") == "66,7\u00a0%"
    assert percent(2 / 3, "en") == "66.7%"
    assert percent(1.0, "en") == "100%"
    assert percent(None, "fr") == "\u2013"
    assert (decimal(11 / 3, "fr"), decimal(4.0, "en"), decimal(3.5, "en")) == ("3,67", "4", "3.5")
