"""Timers the sla service stores and fires: warnings, breaches, reminders, auto-close.

DOMAIN §5 (automations), §6 (service levels), §9 (no warnings at night unless critical).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sla_stories import DAY, DESKS, M, Story

from desk_policies.calendars import shipped_calendars
from sla.domain.business_time import BusinessTime
from sla.domain.timers import Timer, TimerKind

CALENDARS = shipped_calendars()
ALWAYS = BusinessTime(CALENDARS["always"])
GENEVA = BusinessTime(CALENDARS["ch-geneva-business"])


def by_kind(timers: tuple[Timer, ...], kind: TimerKind, clock: str | None = None) -> list[Timer]:
    return [t for t in timers if t.kind is kind and (clock is None or t.clock == clock)]


# --- SLA warnings and breaches --------------------------------------------------------------


@pytest.mark.parametrize("desk", DESKS)
def test_a_running_clock_arms_a_warning_at_its_share_and_a_breach_when_due(desk: str) -> None:
    story = Story(desk, priority="high")
    clock = story.clocks(*DAY, 10, 5).response
    timers = story.timers(*DAY, 10, 5)
    assert clock is not None
    [warning] = by_kind(timers, TimerKind.SLA_WARNING, "response")
    [breach] = by_kind(timers, TimerKind.SLA_BREACH, "response")
    assert warning.fire_at == clock.warning_at
    assert breach.fire_at == clock.due_at
    assert warning.occurrence == "response:warning:high"
    assert breach.armed_version == warning.armed_version == len(story.events) == 1
    assert list(timers) == sorted(timers, key=lambda t: t.fire_at)


@pytest.mark.parametrize(
    ("desk", "answered"),
    [
        ("erp-vendor", "in_progress"),
        ("cloud-partner", "scheduled_operation"),
        ("saas-desk", "assigned"),
    ],
)
def test_stopped_and_unstarted_clocks_arm_nothing(desk: str, answered: str) -> None:
    story = Story(desk).moves(answered, *DAY, 10, 30)
    timers = story.timers(*DAY, 10, 30)
    assert by_kind(timers, TimerKind.SLA_BREACH, "response") == []  # stopped
    assert len(by_kind(timers, TimerKind.SLA_BREACH, "resolution")) == 1  # running
    assert by_kind(Story(desk).timers(*DAY, 10, 5), TimerKind.SLA_BREACH, "resolution") == []


def test_a_clock_paused_while_waiting_for_the_customer_arms_no_breach() -> None:
    story = Story("cloud-partner").moves("in_progress", *DAY, 10, 0)
    story.moves("waiting_customer", *DAY, 10, 30)
    timers = story.timers(*DAY, 10, 30)
    assert by_kind(timers, TimerKind.SLA_BREACH) == []
    assert by_kind(timers, TimerKind.SLA_WARNING) == []


def test_warnings_wait_for_office_hours_unless_critical() -> None:
    """Zammad #4432: no escalation mail at night or at the weekend for a weekday desk."""
    story = Story("erp-vendor", priority="low", start=(2026, 3, 6, 22, 0))  # a Friday night
    story.moves("in_progress", 2026, 3, 6, 22, 0)
    now = story.at(2026, 3, 6, 22, 0)
    # A 24/7 contract: the resolution clock counts nights, the office does not work then.
    timers = story.timers(2026, 3, 6, 22, 0, calendar=ALWAYS, office_hours=GENEVA)
    [warning] = by_kind(timers, TimerKind.SLA_WARNING, "resolution")
    [breach] = by_kind(timers, TimerKind.SLA_BREACH, "resolution")
    target = story.target().resolution_time  # 160 h
    assert breach.fire_at == now + target  # breaches are not deferred
    at_night = now + target * 0.75
    assert at_night == story.at(2026, 3, 11, 22, 0)
    assert warning.fire_at == story.at(2026, 3, 12, 8, 0)  # when the office opens

    story.reprioritised("critical", 2026, 3, 6, 22, 0)
    timers = story.timers(2026, 3, 6, 22, 0, calendar=ALWAYS, office_hours=GENEVA)
    [warning] = by_kind(timers, TimerKind.SLA_WARNING, "resolution")
    critical = story.target().resolution_time  # 8 h
    assert warning.fire_at == now + critical * 0.75  # 04:00 on Saturday: critical, sent anyway


def test_a_warning_that_office_hours_would_push_past_the_breach_is_dropped() -> None:
    story = Story("erp-vendor", priority="medium", start=(2026, 3, 6, 17, 0))  # Friday evening
    now = story.at(2026, 3, 6, 17, 0)
    timers = story.timers(2026, 3, 6, 17, 0, calendar=ALWAYS, office_hours=GENEVA)
    assert by_kind(timers, TimerKind.SLA_WARNING, "response") == []
    [breach] = by_kind(timers, TimerKind.SLA_BREACH, "response")
    assert breach.fire_at == now + timedelta(hours=8)


def test_a_breach_already_due_fires_at_once_and_fired_occurrences_are_not_armed_again() -> None:
    story = Story("saas-desk", "critical", "problem_report")  # 30 min response
    timers = story.timers(*DAY, 11, 0)
    [breach] = by_kind(timers, TimerKind.SLA_BREACH, "response")
    assert breach.fire_at < story.at(*DAY, 11, 0)  # overdue: the service fires it now
    fired = {t.occurrence for t in timers}
    assert story.timers(*DAY, 11, 0, fired=fired) == ()


def test_a_retargeted_clock_warns_again_for_its_new_target() -> None:
    story = Story("cloud-partner", priority="low")
    first = {t.occurrence for t in story.timers(*DAY, 10, 0)}
    story.reprioritised("critical", *DAY, 10, 10)
    again = story.timers(*DAY, 10, 10, fired=first)
    assert {t.occurrence for t in by_kind(again, TimerKind.SLA_WARNING)} == {
        "response:warning:critical"
    }


def test_timers_are_stale_safe_armed_at_the_current_version_with_deterministic_ids() -> None:
    story = Story("cloud-partner", priority="high")
    before = story.timers(*DAY, 10, 0)
    assert [t.command_id for t in before] == [t.command_id for t in story.timers(*DAY, 10, 0)]
    story.commented(*DAY, 10, 15)
    after = story.timers(*DAY, 10, 15)
    assert {t.armed_version for t in after} == {2}
    assert [t.occurrence for t in after] == [t.occurrence for t in before]
    assert {t.command_id for t in after}.isdisjoint(t.command_id for t in before)


# --- reminders and auto-close while waiting for the customer ---------------------------------


def test_erp_vendor_reminds_after_10_and_15_days_and_closes_after_20() -> None:
    story = Story("erp-vendor").moves("in_progress", *DAY, 10, 0)
    story.moves("waiting_customer", *DAY, 11, 0)
    timers = story.timers(*DAY, 11, 0)
    reminders = by_kind(timers, TimerKind.REMINDER)
    assert [(t.days_waiting, t.fire_at) for t in reminders] == [
        (10, story.at(2026, 3, 12, 11, 0)),
        (15, story.at(2026, 3, 17, 11, 0)),
    ]
    [auto_close] = by_kind(timers, TimerKind.AUTO_CLOSE)
    assert auto_close.fire_at == story.at(2026, 3, 22, 11, 0)
    assert auto_close.armed_version == len(story.events)


def test_erp_vendor_also_closes_an_unconfirmed_resolution_after_20_days() -> None:
    """Seed 000: "Une solution a été fournie ou la demande est restée sans réponse ... 20 jours"."""
    story = Story("erp-vendor").moves("in_progress", *DAY, 10, 0).moves("resolved", *DAY, 11, 0)
    [auto_close] = by_kind(story.timers(*DAY, 11, 0), TimerKind.AUTO_CLOSE)
    assert auto_close.fire_at == story.at(2026, 3, 22, 11, 0)


def test_cloud_partner_comments_after_3_and_6_days_and_closes_after_12() -> None:
    story = Story("cloud-partner").moves("waiting_customer", *DAY, 10, 0)
    timers = story.timers(*DAY, 10, 0)
    assert [t.fire_at for t in by_kind(timers, TimerKind.REMINDER)] == [
        story.at(2026, 3, 5, 10, 0),
        story.at(2026, 3, 8, 10, 0),  # a Sunday: days are calendar days
    ]
    [auto_close] = by_kind(timers, TimerKind.AUTO_CLOSE)
    assert auto_close.fire_at == story.at(2026, 3, 14, 10, 0)


def test_saas_desk_has_no_waiting_automations() -> None:
    story = Story("saas-desk").moves("assigned", *DAY, 10, 0).moves("answered", *DAY, 11, 0)
    timers = story.timers(*DAY, 11, 0)
    assert by_kind(timers, TimerKind.REMINDER) == by_kind(timers, TimerKind.AUTO_CLOSE) == []


def test_waiting_days_keep_the_local_time_across_a_daylight_saving_change() -> None:
    story = Story("erp-vendor").moves("waiting_customer", 2026, 3, 20, 10, 0)
    [auto_close] = by_kind(story.timers(2026, 3, 20, 10, 0), TimerKind.AUTO_CLOSE)
    assert auto_close.fire_at == story.at(2026, 4, 9, 10, 0)
    assert auto_close.fire_at == datetime(2026, 4, 9, 8, 0, tzinfo=UTC)  # 20 days minus 1 h


def test_counting_restarts_when_the_requester_answers() -> None:
    story = Story("erp-vendor").moves("waiting_customer", *DAY, 10, 0)
    story.moves("in_progress", 2026, 3, 9, 9, 0, role="requester")
    assert by_kind(story.timers(2026, 3, 9, 9, 0), TimerKind.REMINDER) == []  # not waiting
    story.moves("waiting_customer", 2026, 3, 9, 14, 0)
    reminders = by_kind(story.timers(2026, 3, 9, 14, 0), TimerKind.REMINDER)
    assert [t.fire_at for t in reminders] == [
        story.at(2026, 3, 19, 14, 0),
        story.at(2026, 3, 24, 14, 0),
    ]
    assert reminders[0].occurrence == "reminder:10d:v4"


def test_counting_restarts_when_someone_changes_the_waiting_request() -> None:
    """Seed 003: "non modifiés depuis 3 et 6 jours": a comment is a change."""
    story = Story("cloud-partner").moves("waiting_customer", *DAY, 10, 0)
    story.commented(2026, 3, 4, 16, 0, role="agent")
    timers = story.timers(2026, 3, 4, 16, 0)
    assert [t.fire_at for t in by_kind(timers, TimerKind.REMINDER)] == [
        story.at(2026, 3, 7, 16, 0),
        story.at(2026, 3, 10, 16, 0),
    ]


def test_reminders_do_not_restart_the_count_and_are_not_sent_twice() -> None:
    story = Story("cloud-partner").moves("waiting_customer", *DAY, 10, 0)
    story.reminded(3, 2026, 3, 5, 10, 0)
    timers = story.timers(2026, 3, 5, 10, 0)
    assert [(t.days_waiting, t.fire_at) for t in by_kind(timers, TimerKind.REMINDER)] == [
        (6, story.at(2026, 3, 8, 10, 0))
    ]
    [auto_close] = by_kind(timers, TimerKind.AUTO_CLOSE)
    assert auto_close.fire_at == story.at(2026, 3, 14, 10, 0)
    assert {t.armed_version for t in timers} == {3}


def test_a_closed_request_has_no_timers() -> None:
    story = Story("cloud-partner", priority="critical").moves("closed", *DAY, 10, 30)
    assert story.timers(*DAY, 10, 30) == ()


def test_requests_without_sla_still_get_reminders_and_auto_close() -> None:
    story = Story("erp-vendor", request_type="licence").moves("waiting_customer", *DAY, 10, 0)
    timers = story.timers(*DAY, 10, 0)
    assert {t.kind for t in timers} == {TimerKind.REMINDER, TimerKind.AUTO_CLOSE}


def test_timer_fire_instants_are_utc() -> None:
    story = Story("saas-desk", priority="high")
    assert all(t.fire_at.utcoffset() == 0 * M for t in story.timers(*DAY, 10, 0))
