"""Business calendars: the shipped ones, the file format and its precise validation errors."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Any

import pytest

from desk_policies.calendars import (
    BusinessCalendar,
    CalendarError,
    DailyInterval,
    Weekday,
    load_calendar,
    load_calendars,
    parse_calendar,
    shipped_calendars,
)

SHIPPED = shipped_calendars()


def _valid(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "test-calendar",
        "time_zone": "Europe/Zurich",
        "weekly_hours": {"monday": ["08:00-12:00", "13:30-17:30"]},
    }
    data.update(changes)
    return data


def test_the_four_seed_calendars_are_shipped() -> None:
    assert set(SHIPPED) >= {
        "ch-geneva-business",
        "fr-paris-business",
        "ca-quebec-business",
        "always",
    }


def test_geneva_has_a_lunch_break_on_weekdays_and_is_closed_on_weekends() -> None:
    geneva = SHIPPED["ch-geneva-business"]
    monday = date(2026, 3, 2)
    assert [str(i) for i in geneva.hours_on(monday)] == ["08:00-12:00", "13:30-17:30"]
    assert geneva.hours_on(date(2026, 3, 7)) == ()  # Saturday
    assert geneva.hours_on(date(2026, 3, 8)) == ()  # Sunday
    assert geneva.zone.key == "Europe/Zurich"


def test_geneva_observes_cantonal_holidays_and_its_own_closures() -> None:
    geneva = SHIPPED["ch-geneva-business"]
    assert geneva.holiday_name(date(2026, 9, 10)) == "Genevan Fast"
    assert geneva.holiday_name(date(2026, 12, 31)) == "Restoration Day"
    assert geneva.hours_on(date(2026, 4, 6)) == ()  # Easter Monday
    assert geneva.holiday_name(date(2027, 12, 24)) == "Christmas Eve (office closed)"
    assert geneva.holiday_name(date(2026, 3, 2)) is None


def test_paris_follows_french_holidays() -> None:
    paris = SHIPPED["fr-paris-business"]
    assert paris.hours_on(date(2026, 7, 14)) == ()  # Bastille Day, a Tuesday
    assert paris.hours_on(date(2026, 5, 8)) == ()  # Victory Day
    assert [str(i) for i in paris.hours_on(date(2026, 7, 15))] == ["09:00-12:30", "14:00-18:00"]
    assert paris.zone.key == "Europe/Paris"


def test_quebec_follows_provincial_holidays() -> None:
    quebec = SHIPPED["ca-quebec-business"]
    assert quebec.hours_on(date(2026, 6, 24)) == ()  # Fête nationale du Québec
    assert quebec.hours_on(date(2026, 5, 18)) == ()  # Journée nationale des patriotes
    assert [str(i) for i in quebec.hours_on(date(2026, 6, 23))] == ["08:30-17:00"]
    assert quebec.zone.key == "America/Toronto"


def test_always_is_open_every_day_all_day_even_on_holidays() -> None:
    always = SHIPPED["always"]
    assert always.always_open
    assert [str(i) for i in always.hours_on(date(2026, 12, 25))] == ["00:00-24:00"]


def test_interval_text_accepts_24_00_as_midnight() -> None:
    interval = DailyInterval.model_validate("22:00-24:00")
    assert interval.ends_at_midnight
    assert interval.start == time(22)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8h-12h", "expected an interval 'HH:MM-HH:MM'"),
        ("12:00-08:00", "ends before it starts"),
        ("25:00-26:00", "is not a time of day"),
        ("24:00-24:00", "cannot start at 24:00"),
    ],
)
def test_bad_interval_text_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CalendarError, match=message) as info:
        parse_calendar(_valid(weekly_hours={"monday": [text]}), "bad.yaml")
    assert "weekly_hours.monday.0" in str(info.value)
    assert str(info.value).startswith("bad.yaml: invalid calendar")


def test_overlapping_intervals_are_refused() -> None:
    with pytest.raises(CalendarError, match="overlap"):
        parse_calendar(_valid(weekly_hours={"monday": ["08:00-12:00", "11:00-13:00"]}))


def test_unknown_weekday_time_zone_country_and_region_are_refused() -> None:
    with pytest.raises(CalendarError, match=r"weekly_hours\.mondy"):
        parse_calendar(_valid(weekly_hours={"mondy": ["08:00-12:00"]}))
    with pytest.raises(CalendarError, match="unknown IANA time zone 'Europe/Geneva'"):
        parse_calendar(_valid(time_zone="Europe/Geneva"))
    with pytest.raises(CalendarError, match="country 'XX' is not known"):
        parse_calendar(_valid(public_holidays={"country": "XX"}))
    with pytest.raises(CalendarError, match="CH has no subdivision 'QC'"):
        parse_calendar(_valid(public_holidays={"country": "CH", "subdivision": "QC"}))
    with pytest.raises(CalendarError, match="holiday categories"):
        parse_calendar(_valid(public_holidays={"country": "CH", "categories": ["fun"]}))


def test_a_calendar_needs_hours_or_always_open_but_not_both() -> None:
    with pytest.raises(CalendarError, match="weekly_hours is empty"):
        parse_calendar(_valid(weekly_hours={}))
    with pytest.raises(CalendarError, match="24/7 calendar"):
        parse_calendar(_valid(always_open=True))


def test_closures_close_single_days_ranges_and_yearly_dates() -> None:
    calendar = parse_calendar(
        _valid(
            weekly_hours={day.value: ["08:00-17:00"] for day in Weekday},
            closures=[
                {"date": "2026-08-03", "name": "inventory"},
                {"start": "2026-12-28", "end": "2026-12-30", "name": "year end"},
                {"date": "2026-01-02", "every_year": True, "name": "Berchtold"},
            ],
        )
    )
    assert calendar.holiday_name(date(2026, 8, 3)) == "inventory"
    assert calendar.holiday_name(date(2027, 8, 3)) is None
    assert calendar.holiday_name(date(2026, 12, 29)) == "year end"
    assert calendar.holiday_name(date(2030, 1, 2)) == "Berchtold"
    assert calendar.hours_on(date(2026, 12, 31)) != ()


def test_a_closure_ending_before_it_starts_is_refused() -> None:
    with pytest.raises(CalendarError, match="ends \\(2026-01-01\\) before it starts"):
        parse_calendar(_valid(closures=[{"date": "2026-01-02", "end": "2026-01-01"}]))


def test_loading_a_file_checks_yaml_and_that_the_id_is_the_file_name(tmp_path: Path) -> None:
    good = tmp_path / "test-calendar.yaml"
    good.write_text("id: test-calendar\ntime_zone: UTC\nweekly_hours: {friday: ['09:00-10:00']}\n")
    assert isinstance(load_calendar(good), BusinessCalendar)
    misnamed = tmp_path / "other.yaml"
    misnamed.write_text(good.read_text())
    with pytest.raises(CalendarError, match="differs from the file name"):
        load_calendar(misnamed)
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed\n")
    with pytest.raises(CalendarError, match="not valid YAML"):
        load_calendar(broken)
    listed = tmp_path / "listed.yaml"
    listed.write_text("- 1\n")
    with pytest.raises(CalendarError, match="a calendar is a mapping"):
        load_calendar(listed)
    assert list(load_calendars([good])) == ["test-calendar"]


def test_every_problem_is_reported_at_once_with_its_place() -> None:
    with pytest.raises(CalendarError) as info:
        parse_calendar({"id": "Bad Id", "time_zone": "Mars/Olympus", "colour": "red"}, "x.yaml")
    message = str(info.value)
    assert "id:" in message
    assert "time_zone:" in message
    assert "colour: Extra inputs are not permitted" in message
