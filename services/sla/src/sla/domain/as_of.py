"""A request's clocks as they stood at an instant (pure): its timeline cut there.

The timeline (`sla.domain.timeline`) is the request's status and priority after each version,
from when its event happened. At `as_of`, the request had the steps up to the first one after
that instant (a stream is cut once, so the clocks read a state the request really had); its
clocks are then read with that timeline and `now = as_of` (`sla.domain.clocks.read_clocks`),
as if sla were asked at that instant. Before its creation the request had no clocks (None).

An instant given from outside is read by the rule workflow reads `as_of` by: ISO 8601 with its
offset, between `MIN_YEAR` and `MAX_YEAR`, at most `MAX_INSTANT` characters (`instant`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from desk_contracts.state import RequestState
from sla.domain.timeline import Timeline

MIN_YEAR = 2000
MAX_YEAR = 2999
MAX_INSTANT = 40
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII,
)


class BadInstant(ValueError):
    """An instant given from outside that is not one sla reads (a sentence why)."""


def instant(text: str) -> datetime:
    """The instant `text` (ISO 8601 with an offset) in UTC; BadInstant when it is too long,
    not an instant, naive, or out of the years sla reads."""
    if len(text) > MAX_INSTANT:
        raise BadInstant(f"an instant is at most {MAX_INSTANT} characters")
    if not _INSTANT.fullmatch(text):
        raise BadInstant("not an ISO 8601 instant (e.g. 2026-03-02T10:30:00+01:00)")
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise BadInstant("not an ISO 8601 instant (e.g. 2026-03-02T10:30:00+01:00)") from None
    if found.tzinfo is None or found.utcoffset() is None:
        raise BadInstant("the instant needs its offset from UTC (e.g. +01:00 or Z)")
    if not MIN_YEAR <= found.year <= MAX_YEAR:
        raise BadInstant(f"the instant's year must be between {MIN_YEAR} and {MAX_YEAR}")
    return found.astimezone(UTC)


def timeline_at(
    timeline: Timeline, state: RequestState, as_of: datetime
) -> tuple[Timeline, RequestState] | None:
    """The request's timeline and state as they stood at `as_of` (see module); None before
    its creation."""
    kept = []
    for step in timeline.steps:
        if step.at > as_of:
            break
        kept.append(step)
    if not kept:
        return None
    last = kept[-1]
    then = state.model_copy(
        update={
            "version": last.version,
            "status": last.status,
            "priority": last.priority,
            "updated_at": last.at,
        }
    )
    return Timeline(tuple(kept)), then
