"""The hourly flood limits of `POST /requests` as pure functions: what a request counts for,
which limit it goes over first, and when the window frees."""

from __future__ import annotations

from datetime import UTC, datetime

from intake.domain.flood import (
    DESK,
    DOMAIN,
    SUBMITTER,
    RequestLimits,
    counted_for,
    over_limit,
    seconds_to_next_window,
)

AT = datetime(2026, 3, 2, 9, 59, 30, 500_000, tzinfo=UTC)
LIMITS = RequestLimits(per_submitter=2, per_domain=3, per_desk=4)


def test_a_request_counts_for_its_submitter_its_requester_s_domain_and_its_desk() -> None:
    keys = counted_for("Paul@Desk.example", "new@ACME.example", "saas-desk", staff=False)
    assert keys == {SUBMITTER: "paul@desk.example", DOMAIN: "acme.example", DESK: "saas-desk"}
    staff = counted_for("paul@desk.example", "new@acme.example", "saas-desk", staff=True)
    assert staff == {SUBMITTER: "paul@desk.example", DESK: "saas-desk"}


def test_the_first_limit_gone_over_is_named_with_the_seconds_left_in_the_hour() -> None:
    assert over_limit({SUBMITTER: 2, DOMAIN: 3, DESK: 4}, LIMITS, AT) is None
    flooded = over_limit({SUBMITTER: 1, DOMAIN: 4, DESK: 5}, LIMITS, AT)
    assert flooded is not None and flooded.kind == DOMAIN and flooded.retry_after == 30
    assert "mail domain has opened 3 requests" in flooded.reason
    staff = over_limit({SUBMITTER: 1, DESK: 5}, LIMITS, AT)  # no domain counted for staff
    assert staff is not None and staff.kind == DESK


def test_retry_after_is_at_least_one_second_and_at_most_an_hour() -> None:
    assert seconds_to_next_window(AT.replace(second=59, microsecond=999_999)) == 1
    assert seconds_to_next_window(AT.replace(minute=0, second=0, microsecond=0)) == 3600
