"""Calendar arithmetic: examples per shipped calendar, and properties across DST changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from desk_policies.calendars import BusinessCalendar, Weekday, parse_calendar, shipped_calendars
from sla.domain.business_time import BusinessTime, NoBusinessHours, as_utc

CALENDARS = shipped_calendars()
GENEVA = BusinessTime(CALENDARS["ch-geneva-business"])
PARIS = BusinessTime(CALENDARS["fr-paris-business"])
QUEBEC = BusinessTime(CALENDARS["ca-quebec-business"])
ALWAYS = BusinessTime(CALENDARS["always"])
ZURICH = ZoneInfo("Europe/Zurich")
TORONTO = ZoneInfo("America/Toronto")
# Round the clock except Saturdays in Zurich: the 2-3 a.m. hour that DST removes or repeats is
# business time here, so 23- and 25-hour days are exercised, not only shifted offsets.
ROUND_THE_CLOCK = BusinessTime(
    parse_calendar(
        {
            "id": "zurich-round-the-clock",
            "time_zone": "Europe/Zurich",
            "weekly_hours": {d.value: ["00:00-24:00"] for d in Weekday if d != "saturday"},
        }
    )
)
TORONTO_ROUND_THE_CLOCK = BusinessTime(
    parse_calendar(
        {
            "id": "toronto-round-the-clock",
            "time_zone": "America/Toronto",
            "weekly_hours": {d.value: ["00:00-12:00", "12:30-24:00"] for d in Weekday},
            "public_holidays": {"country": "CA", "subdivision": "ON"},
        }
    )
)
BUSINESS = (GENEVA, PARIS, QUEBEC, ROUND_THE_CLOCK, TORONTO_ROUND_THE_CLOCK)
H = timedelta(hours=1)


def at(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[arg-type, misc]


# --- examples -------------------------------------------------------------------------


def test_the_lunch_break_does_not_count_in_geneva() -> None:
    assert GENEVA.between(at(ZURICH, 2026, 3, 2, 11), at(ZURICH, 2026, 3, 2, 14)) == 1.5 * H


def test_the_night_and_the_weekend_do_not_count_in_geneva() -> None:
    friday_16 = at(ZURICH, 2026, 3, 6, 16)
    monday_9 = at(ZURICH, 2026, 3, 9, 9)
    assert GENEVA.between(friday_16, monday_9) == 2.5 * H


def test_a_cantonal_holiday_does_not_count_in_geneva() -> None:
    # Thursday 10 September 2026 is the Genevan Fast.
    wednesday_17 = at(ZURICH, 2026, 9, 9, 17)
    friday_9 = at(ZURICH, 2026, 9, 11, 9)
    assert GENEVA.between(wednesday_17, friday_9) == 1.5 * H


def test_adding_business_time_skips_the_easter_weekend_in_geneva() -> None:
    thursday_17 = at(ZURICH, 2026, 4, 2, 17)
    due = GENEVA.add(thursday_17, 4 * H)
    assert due == at(ZURICH, 2026, 4, 7, 11, 30)  # Good Friday, Easter Monday closed
    assert due.tzinfo is UTC


def test_adding_across_the_spring_forward_weekend_keeps_wall_clock_hours() -> None:
    friday_16 = at(ZURICH, 2026, 3, 27, 16)
    assert GENEVA.add(friday_16, 3 * H) == at(ZURICH, 2026, 3, 30, 9, 30)
    assert QUEBEC.add(at(TORONTO, 2026, 3, 6, 16), 2 * H) == at(TORONTO, 2026, 3, 9, 9, 30)


def test_paris_counts_its_long_lunch_break_and_bastille_day() -> None:
    monday_12 = at(ZoneInfo("Europe/Paris"), 2026, 7, 13, 12)
    wednesday_10 = at(ZoneInfo("Europe/Paris"), 2026, 7, 15, 10)
    assert PARIS.between(monday_12, wednesday_10) == 0.5 * H + 4 * H + 1 * H


def test_quebec_skips_the_fete_nationale() -> None:
    assert QUEBEC.add(at(TORONTO, 2026, 6, 23, 16), 2 * H) == at(TORONTO, 2026, 6, 25, 9, 30)


def test_a_round_the_clock_calendar_has_a_23_hour_day_in_spring_and_25_in_autumn() -> None:
    # Sundays 29 March and 25 October 2026.
    assert ROUND_THE_CLOCK.between(at(ZURICH, 2026, 3, 29), at(ZURICH, 2026, 3, 30)) == 23 * H
    assert ROUND_THE_CLOCK.between(at(ZURICH, 2026, 10, 25), at(ZURICH, 2026, 10, 26)) == 25 * H
    assert ROUND_THE_CLOCK.between(at(ZURICH, 2026, 3, 28), at(ZURICH, 2026, 3, 29)) == 0 * H
    toronto = TORONTO_ROUND_THE_CLOCK  # Sundays 8 March and 1 November 2026
    assert toronto.between(at(TORONTO, 2026, 3, 8), at(TORONTO, 2026, 3, 9)) == 22.5 * H
    assert toronto.between(at(TORONTO, 2026, 11, 1), at(TORONTO, 2026, 11, 2)) == 24.5 * H


def test_always_counts_wall_clock_time_including_nights_and_holidays() -> None:
    start = datetime(2026, 12, 24, 18, tzinfo=UTC)
    assert ALWAYS.between(start, start + 48 * H) == 48 * H
    assert ALWAYS.add(start, 5 * H) == start + 5 * H


def test_next_open_is_the_instant_itself_in_hours_and_the_next_opening_otherwise() -> None:
    inside = at(ZURICH, 2026, 3, 2, 10)
    assert GENEVA.next_open(inside) == inside
    assert GENEVA.next_open(at(ZURICH, 2026, 3, 2, 12, 15)) == at(ZURICH, 2026, 3, 2, 13, 30)
    assert GENEVA.next_open(at(ZURICH, 2026, 3, 6, 17, 30)) == at(ZURICH, 2026, 3, 9, 8)
    assert not GENEVA.is_open(at(ZURICH, 2026, 3, 2, 17, 30))  # the end is excluded
    assert GENEVA.is_open(at(ZURICH, 2026, 3, 2, 8))


def test_naive_instants_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        as_utc(datetime(2026, 3, 2, 10))
    with pytest.raises(ValueError, match="negative"):
        GENEVA.add(at(ZURICH, 2026, 3, 2, 10), -H)


def test_a_calendar_closed_for_years_is_reported_not_looped_on() -> None:
    closed = BusinessTime(
        BusinessCalendar.model_validate(
            {
                "id": "closed",
                "weekly_hours": {"monday": ["09:00-10:00"]},
                "closures": [{"date": "2026-01-01", "end": "2031-12-31", "name": "gone"}],
            }
        )
    )
    with pytest.raises(NoBusinessHours):
        closed.add(datetime(2026, 1, 1, tzinfo=UTC), H)


# --- properties -----------------------------------------------------------------------

# Around each DST change of 2026 in both zones, plus the whole of 2026-2027.
DST_CHANGES = [
    datetime(2026, 3, 8, 7, tzinfo=UTC),  # Toronto springs forward
    datetime(2026, 3, 29, 1, tzinfo=UTC),  # Zurich springs forward
    datetime(2026, 10, 25, 1, tzinfo=UTC),  # Zurich falls back
    datetime(2026, 11, 1, 6, tzinfo=UTC),  # Toronto falls back
]
minutes = st.integers(min_value=0, max_value=60 * 24 * 6)
near_dst = st.builds(
    lambda change, offset: change + timedelta(minutes=offset - 60 * 24 * 3),
    st.sampled_from(DST_CHANGES),
    minutes,
)
any_time = st.integers(min_value=0, max_value=2 * 365 * 24 * 60).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m, seconds=m % 7)
)
instants = st.one_of(near_dst, any_time)
durations = st.integers(min_value=0, max_value=80 * 60 * 60).map(lambda s: timedelta(seconds=s))
calendars = st.sampled_from(BUSINESS)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(start=instants, span=durations)
def test_always_equals_wall_clock_time(start: datetime, span: timedelta) -> None:
    assert ALWAYS.between(start, start + span) == span
    assert ALWAYS.add(start, span) == start + span


@FAST
@given(calendar=calendars, start=instants, duration=durations)
def test_adding_business_time_then_measuring_it_gives_it_back(
    calendar: BusinessTime, start: datetime, duration: timedelta
) -> None:
    due = calendar.add(start, duration)
    assert due >= start
    assert calendar.between(start, due) == duration
    if duration:
        # ... and `add` answers the earliest such instant, inside business hours.
        assert calendar.between(start, due - timedelta(microseconds=1)) < duration


@FAST
@given(calendar=calendars, a=instants, b=instants, c=instants)
def test_business_time_adds_up_over_consecutive_spans(
    calendar: BusinessTime, a: datetime, b: datetime, c: datetime
) -> None:
    a, b, c = sorted((a, b, c))
    assert calendar.between(a, b) + calendar.between(b, c) == calendar.between(a, c)
    assert calendar.between(a, c) <= c - a


def _open_by_the_book(calendar: BusinessTime, instant: datetime) -> bool:
    """An independent oracle: read the local wall clock, the weekday and the holiday list."""
    local = instant.astimezone(calendar.zone)
    day = local.date()
    if calendar.calendar.is_closed_all_day(day):
        return False
    wall = local.time().replace(tzinfo=None)
    for hours in calendar.calendar.weekly_hours.get(Weekday.of(day), ()):
        if hours.start <= wall and (hours.ends_at_midnight or wall < hours.end):
            return True
    return False


@settings(max_examples=25, deadline=None)
@given(calendar=calendars, start=instants, span=st.integers(min_value=0, max_value=3 * 24 * 4))
def test_holidays_and_nights_never_count(
    calendar: BusinessTime, start: datetime, span: int
) -> None:
    """Measured on a 15-minute grid, business time is exactly the grid points found open."""
    start = start.replace(minute=start.minute // 15 * 15, second=0)
    step = timedelta(minutes=15)
    expected = sum(
        (step for i in range(span) if _open_by_the_book(calendar, start + i * step)),
        timedelta(0),
    )
    assert calendar.between(start, start + span * step) == expected


@FAST
@given(calendar=calendars, instant=instants)
def test_next_open_skips_only_closed_time(calendar: BusinessTime, instant: datetime) -> None:
    opening = calendar.next_open(instant)
    assert opening >= instant
    assert calendar.between(instant, opening) == timedelta(0)
    assert _open_by_the_book(calendar, opening)


@FAST
@given(calendar=calendars, day=st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)))
def test_a_holiday_or_weekend_day_counts_nothing(calendar: BusinessTime, day: date) -> None:
    zone = calendar.zone
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=zone)
    next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    measured = calendar.between(midnight, next_midnight)
    if not calendar.calendar.hours_on(day):
        assert measured == timedelta(0)
    else:
        assert measured > timedelta(0)
