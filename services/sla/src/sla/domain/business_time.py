"""Calendar arithmetic: business time between instants, adding business time, next open instant.

Instants are aware datetimes (any offset in, UTC out). Business hours are local wall-clock
times of the calendar's zone, turned into UTC instants day by day with zoneinfo, so a day
of 23 or 25 hours around a daylight-saving change counts exactly what the clock on the
office wall shows. Intervals are half-open `[start, end)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta

from desk_policies.calendars import BusinessCalendar

__all__ = ["BusinessTime", "NoBusinessHours", "as_utc"]

ZERO = timedelta(0)
_SEARCH_LIMIT_DAYS = 3 * 366  # a calendar closed this long is treated as broken
Interval = tuple[datetime, datetime]


class NoBusinessHours(ValueError):
    """The calendar has no business time in the searched horizon (e.g. closed for years)."""


def as_utc(instant: datetime) -> datetime:
    """The same instant in UTC; naive datetimes are refused (time is always explicit)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"naive datetime {instant.isoformat()}: give an aware instant")
    return instant.astimezone(UTC)


class BusinessTime:
    """Arithmetic on one calendar; keeps a memo of each local day's intervals in UTC."""

    __slots__ = ("_days", "calendar", "zone")

    def __init__(self, calendar: BusinessCalendar) -> None:
        self.calendar = calendar
        self.zone = calendar.zone
        self._days: dict[date, tuple[Interval, ...]] = {}

    @property
    def always_open(self) -> bool:
        return self.calendar.always_open

    def day_intervals(self, day: date) -> tuple[Interval, ...]:
        """Business intervals of a local day, as ordered, disjoint UTC instants."""
        cached = self._days.get(day)
        if cached is not None:
            return cached
        intervals: list[Interval] = []
        for hours in self.calendar.hours_on(day):
            start = datetime.combine(day, hours.start, tzinfo=self.zone).astimezone(UTC)
            end_day = day + timedelta(days=1) if hours.ends_at_midnight else day
            end_time = time(0) if hours.ends_at_midnight else hours.end
            end = datetime.combine(end_day, end_time, tzinfo=self.zone).astimezone(UTC)
            if intervals:  # a wall time repeated at a fall-back change must not count twice
                start = max(start, intervals[-1][1])
            if end > start:
                intervals.append((start, end))
        result = tuple(intervals)
        self._days[day] = result
        return result

    def _intervals_from(self, instant: datetime) -> Iterator[Interval]:
        """Business intervals ending after `instant`, in order, for ever (bounded search)."""
        day = instant.astimezone(self.zone).date() - timedelta(days=1)
        empty_days = 0
        while True:
            found = False
            for start, end in self.day_intervals(day):
                if end > instant:
                    found = True
                    yield start, end
            empty_days = 0 if found else empty_days + 1
            if empty_days > _SEARCH_LIMIT_DAYS:
                raise NoBusinessHours(
                    f"calendar {self.calendar.id!r} has no business hours for "
                    f"{_SEARCH_LIMIT_DAYS} days after {day - timedelta(days=empty_days)}"
                )
            day += timedelta(days=1)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time in `[start, end)`; zero when `end` is not after `start`."""
        start, end = as_utc(start), as_utc(end)
        if end <= start:
            return ZERO
        if self.always_open:
            return end - start
        total = ZERO
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        last_day = end.astimezone(self.zone).date()
        while day <= last_day:
            for open_at, close_at in self.day_intervals(day):
                lo, hi = max(open_at, start), min(close_at, end)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The earliest instant by which `duration` of business time has passed since `start`."""
        start = as_utc(start)
        if duration < ZERO:
            raise ValueError(f"cannot add a negative business duration ({duration})")
        if duration == ZERO:
            return start
        if self.always_open:
            return start + duration
        remaining = duration
        for open_at, close_at in self._intervals_from(start):
            lo = max(open_at, start)
            available = close_at - lo
            if remaining <= available:
                return lo + remaining
            remaining -= available
        raise AssertionError("unreachable: the interval search is unbounded")  # pragma: no cover

    def next_open(self, instant: datetime) -> datetime:
        """`instant` itself when business hours are open then, else when they next open."""
        instant = as_utc(instant)
        if self.always_open:
            return instant
        for open_at, _close_at in self._intervals_from(instant):
            return max(open_at, instant)
        raise AssertionError("unreachable: the interval search is unbounded")  # pragma: no cover

    def is_open(self, instant: datetime) -> bool:
        """Whether `instant` falls inside business hours."""
        return self.next_open(instant) == as_utc(instant)
