"""Instants as they enter from outside (a query's `as_of`, `from`, `to`): the one rule
(`desk_contracts.inputs.instant`) that workflow, sla and the portal read them by."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desk_contracts.inputs import BadInstant, instant


def test_an_instant_is_read_in_utc_with_its_offset() -> None:
    assert instant("2026-03-02T10:30:00+01:00") == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    assert instant("2026-03-02T09:30Z") == datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2026-03-02T10:30:00", "offset"),
        ("not a time", "ISO 8601"),
        ("1999-12-31T23:59:59+00:00", "year"),
        ("3000-01-01T00:00:00+00:00", "year"),
        ("0001-01-01T00:00:00+01:00", "year"),
        ("9" * 41, "at most 40"),
        ("2026-03-02T10:30:00\x00+01:00", "ISO 8601"),
    ],
)
def test_what_is_not_an_instant_is_refused_with_why(text: str, why: str) -> None:
    with pytest.raises(BadInstant, match=why):
        instant(text)
