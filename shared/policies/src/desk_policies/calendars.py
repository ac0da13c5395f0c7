"""Business calendars: when a contract's SLA clocks count (pure data, validated at load).

A calendar is either 24/7 (`always_open: true`) or a time zone plus weekly business hours
(several intervals a weekday, so lunch breaks are gaps), minus the public holidays of a
country and region (from the `holidays` package) and minus custom closure dates.

File format (YAML, one calendar a file, the file name is the calendar id):

    id: ch-geneva-business
    name: Geneva office hours
    time_zone: Europe/Zurich
    weekly_hours:
      monday: ["08:00-12:00", "13:30-17:30"]
      ...
    public_holidays: {country: CH, subdivision: GE}
    closures:
      - {date: 2026-12-24, name: Christmas Eve}
      - {start: 2026-12-28, end: 2026-12-30, name: Year-end closure}

Intervals are local wall-clock times, half-open `[start, end)`; `24:00` ends a day at
midnight. Instant arithmetic on calendars lives in the sla service (`sla.domain.business_time`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, time
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "ALWAYS",
    "CALENDARS_DIR",
    "BusinessCalendar",
    "CalendarError",
    "Closure",
    "DailyInterval",
    "PublicHolidays",
    "Weekday",
    "load_calendar",
    "load_calendars",
    "shipped_calendars",
]

CALENDARS_DIR = Path(__file__).parent / "data" / "calendars"
ALWAYS = "always"

_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Weekday(StrEnum):
    """Days of the week in ISO order (`date.weekday()` gives the index)."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @classmethod
    def of(cls, day: date) -> Weekday:
        return _WEEKDAYS[day.weekday()]


_WEEKDAYS = tuple(Weekday)


def _clock_time(hours: int, minutes: int, text: str) -> time:
    if hours == 24 and minutes == 0:
        return time(0)
    if not (0 <= hours <= 23 and 0 <= minutes <= 59):
        raise ValueError(f"{text!r} is not a time of day (00:00 to 24:00)")
    return time(hours, minutes)


class DailyInterval(BaseModel):
    """Business hours within one local day, `[start, end)`. `end == 00:00` means 24:00."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: time
    end: time

    @model_validator(mode="before")
    @classmethod
    def _parse_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _INTERVAL.match(value)
        if match is None:
            raise ValueError(f"expected an interval 'HH:MM-HH:MM', got {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start = _clock_time(h1, m1, value)
        if h1 == 24:
            raise ValueError(f"an interval cannot start at 24:00 ({value!r})")
        return {"start": start, "end": _clock_time(h2, m2, value)}

    @model_validator(mode="after")
    def _start_before_end(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("business hours are local wall-clock times, without a time zone")
        if not self.ends_at_midnight and self.end <= self.start:
            raise ValueError(
                f"interval {self} ends before it starts (use 24:00 for midnight; "
                "intervals do not cross midnight, split them over two days)"
            )
        return self

    @property
    def ends_at_midnight(self) -> bool:
        return self.end == time(0)

    def __str__(self) -> str:
        end = "24:00" if self.ends_at_midnight else self.end.strftime("%H:%M")
        return f"{self.start.strftime('%H:%M')}-{end}"


class PublicHolidays(BaseModel):
    """Public holidays of a country (ISO 3166-1 alpha-2) and region, per `holidays`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    country: str
    subdivision: str | None = None
    categories: tuple[str, ...] = ("public",)

    @model_validator(mode="after")
    def _known_to_holidays(self) -> Self:
        supported = holidays.list_supported_countries()
        if self.country not in supported:
            raise ValueError(f"country {self.country!r} is not known to the holidays package")
        regions = supported[self.country]
        if self.subdivision is not None and self.subdivision not in regions:
            raise ValueError(
                f"{self.country} has no subdivision {self.subdivision!r}; "
                f"known: {', '.join(regions)}"
            )
        known = holidays.country_holidays(self.country).supported_categories
        unknown = [c for c in self.categories if c not in known]
        if unknown:
            raise ValueError(
                f"holiday categories {unknown} unknown for {self.country}; known: {list(known)}"
            )
        return self

    def table(self) -> holidays.HolidayBase:
        """A lazily-filled table of holidays (years are added on first lookup)."""
        return holidays.country_holidays(
            self.country, subdiv=self.subdivision, categories=self.categories
        )


class Closure(BaseModel):
    """A custom closure: one date, or an inclusive range of dates (company holidays).

    With `every_year: true` only the month and day count, so `{date: 2026-12-24,
    every_year: true}` closes every Christmas Eve (a range must then stay within one year).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    start: date = Field(alias="date")
    end: date | None = None
    name: str = "closure"
    every_year: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"closure {self.name!r} ends ({self.end}) before it starts")
        if (
            self.every_year
            and self.end is not None
            and (
                (self.end.month, self.end.day) < (self.start.month, self.start.day)
                or self.end.year != self.start.year
            )
        ):
            raise ValueError(f"yearly closure {self.name!r} must start and end in the same year")
        return self

    @property
    def last_day(self) -> date:
        return self.start if self.end is None else self.end

    def covers(self, day: date) -> bool:
        if self.every_year:
            month_day = (day.month, day.day)
            last = self.last_day
            return (self.start.month, self.start.day) <= month_day <= (last.month, last.day)
        return self.start <= day <= self.last_day


class BusinessCalendar(BaseModel):
    """When SLA time counts: 24/7, or weekly hours in a time zone minus holidays and closures."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = ""
    time_zone: str = "UTC"
    always_open: bool = False
    weekly_hours: dict[Weekday, tuple[DailyInterval, ...]] = Field(default_factory=dict)
    public_holidays: PublicHolidays | None = None
    closures: tuple[Closure, ...] = ()

    _holiday_table: holidays.HolidayBase | None = PrivateAttr(default=None)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Zurich)")
        try:
            ZoneInfo(value)
        except ZoneInfoNotFoundError as exc:  # pragma: no cover - guarded above
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _no_overlap(
        cls, value: dict[Weekday, tuple[DailyInterval, ...]]
    ) -> dict[Weekday, tuple[DailyInterval, ...]]:
        ordered: dict[Weekday, tuple[DailyInterval, ...]] = {}
        for day, intervals in value.items():
            sorted_ = tuple(sorted(intervals, key=lambda i: i.start))
            for before, after in pairwise(sorted_):
                if before.ends_at_midnight or before.end > after.start:
                    raise ValueError(f"{day}: intervals {before} and {after} overlap")
            ordered[day] = sorted_
        return ordered

    @model_validator(mode="after")
    def _hours_or_always(self) -> Self:
        has_hours = any(self.weekly_hours.values())
        if self.always_open and (has_hours or self.public_holidays or self.closures):
            raise ValueError(
                "a 24/7 calendar (always_open) takes no weekly_hours, public_holidays or closures"
            )
        if not self.always_open and not has_hours:
            raise ValueError("weekly_hours is empty: give business hours or always_open: true")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def holiday_name(self, day: date) -> str | None:
        """Why `day` is closed all day (a public holiday or a closure), or None."""
        if self.always_open:
            return None
        for closure in self.closures:
            if closure.covers(day):
                return closure.name
        if self.public_holidays is None:
            return None
        if self._holiday_table is None:
            self._holiday_table = self.public_holidays.table()
        name = self._holiday_table.get(day)
        return None if name is None else str(name)

    def is_closed_all_day(self, day: date) -> bool:
        return self.holiday_name(day) is not None

    def hours_on(self, day: date) -> tuple[DailyInterval, ...]:
        """Local business intervals of `day`, after holidays and closures (24/7: all day)."""
        if self.always_open:
            return _ALL_DAY
        if self.is_closed_all_day(day):
            return ()
        return self.weekly_hours.get(Weekday.of(day), ())


_ALL_DAY = (DailyInterval(start=time(0), end=time(0)),)


class CalendarError(ValueError):
    """A calendar file that cannot be used; the message says where and why."""


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid calendar"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def parse_calendar(data: Any, source: str = "<calendar>") -> BusinessCalendar:
    """Validate already-parsed data; raise CalendarError with every problem and its place."""
    if not isinstance(data, Mapping):
        raise CalendarError(f"{source}: a calendar is a mapping, got {type(data).__name__}")
    try:
        return BusinessCalendar.model_validate(data)
    except ValidationError as exc:
        raise CalendarError(_describe(exc, source)) from None


def load_calendar(path: Path) -> BusinessCalendar:
    """Read one calendar file; its file name (without extension) must be its id."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CalendarError(f"{path}: not valid YAML: {exc}") from None
    calendar = parse_calendar(data, str(path))
    if calendar.id != path.stem:
        raise CalendarError(f"{path}: id {calendar.id!r} differs from the file name {path.stem!r}")
    return calendar


def load_calendars(paths: Iterable[Path]) -> dict[str, BusinessCalendar]:
    """Load several calendar files into a mapping by id; duplicate ids are refused."""
    found: dict[str, BusinessCalendar] = {}
    for path in sorted(paths):
        calendar = load_calendar(path)
        if calendar.id in found:
            raise CalendarError(f"{path}: calendar id {calendar.id!r} defined twice")
        found[calendar.id] = calendar
    return found


def shipped_calendars(directory: Path = CALENDARS_DIR) -> dict[str, BusinessCalendar]:
    """The calendars shipped with the product (every `*.yaml` of the data folder)."""
    return load_calendars(directory.glob("*.yaml"))
