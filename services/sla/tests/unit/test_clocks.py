"""SLA clocks, rule by rule, for each seed desk (DOMAIN §6, seed pages 002, 003, 004)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sla_stories import DAY, DESKS, SOLVED, TAKEN_IN_CHARGE, H, M, Story

from sla.domain.clocks import ClockState, HistoryError, read_clocks
from sla.domain.timeline import Step, Timeline

# --- response clock -------------------------------------------------------------------


@pytest.mark.parametrize("desk", DESKS)
def test_response_runs_from_submission(desk: str) -> None:
    clocks = Story(desk).clocks(*DAY, 11, 0)
    assert clocks.response is not None
    assert clocks.response.state is ClockState.RUNNING
    assert clocks.response.elapsed == 1 * H
    assert clocks.response.reason.startswith("running: ")
    assert "since 2026-03-02 10:00" in clocks.response.reason


@pytest.mark.parametrize(
    ("desk", "first_response"),
    [
        ("erp-vendor", "in_progress"),
        ("cloud-partner", "waiting_customer"),
        ("cloud-partner", "scheduled_operation"),
        ("cloud-partner", "resolved"),
        ("cloud-partner", "closed"),
        ("saas-desk", "assigned"),  # "confirmation de la prise en charge"
    ],
)
def test_response_stops_at_the_first_status_that_answers_the_request(
    desk: str, first_response: str
) -> None:
    story = Story(desk).moves(first_response, *DAY, 10, 30)
    clock = story.clocks(*DAY, 15, 0).response
    assert clock is not None
    assert clock.state is ClockState.STOPPED
    assert clock.elapsed == 30 * M
    assert clock.reason.startswith("stopped: first response (")
    assert clock.due_at is None and not clock.breached


def test_response_keeps_running_while_in_progress_at_the_cloud_partner() -> None:
    """Seed 003: In progress is not a response; only the listed states are."""
    clock = Story("cloud-partner").moves("in_progress", *DAY, 10, 15).clocks(*DAY, 11, 0).response
    assert clock is not None and clock.state is ClockState.RUNNING
    assert clock.elapsed == 1 * H


@pytest.mark.parametrize("desk", ["cloud-partner"])
def test_response_is_not_restarted_when_the_request_is_reopened(desk: str) -> None:
    story = (
        Story(desk)
        .moves("in_progress", *DAY, 10, 10)
        .moves("waiting_customer", *DAY, 10, 20)
        .moves("in_progress", *DAY, 10, 40, role="requester")
        .moves("closed", *DAY, 11, 0)
        .moves("in_progress", *DAY, 11, 30, role="requester")
    )
    clock = story.clocks(*DAY, 16, 0).response
    assert clock is not None and clock.state is ClockState.STOPPED
    assert clock.elapsed == 20 * M


def test_response_is_not_restarted_when_the_erp_request_comes_back_from_rnd() -> None:
    story = (
        Story("erp-vendor")
        .moves("qualified", *DAY, 10, 5)
        .moves("in_progress", *DAY, 10, 30)
        .moves("waiting_rnd", *DAY, 11, 0)
        .moves("in_progress", *DAY, 14, 0)
    )
    clock = story.clocks(*DAY, 16, 0).response
    assert clock is not None and clock.state is ClockState.STOPPED
    assert clock.elapsed == 30 * M


# --- resolution clock -----------------------------------------------------------------


@pytest.mark.parametrize("desk", DESKS)
def test_resolution_does_not_start_before_the_request_is_taken_in_charge(desk: str) -> None:
    clock = Story(desk).clocks(*DAY, 11, 0).resolution
    assert clock is not None
    assert clock.state is ClockState.NOT_STARTED
    assert clock.elapsed == timedelta(0)
    assert clock.reason == "not started: waiting to be taken in charge"
    assert clock.due_at is None


@pytest.mark.parametrize("desk", DESKS)
def test_resolution_runs_from_taking_in_charge_until_the_solution(desk: str) -> None:
    story = Story(desk).moves(TAKEN_IN_CHARGE[desk], *DAY, 10, 30)
    running = story.clocks(*DAY, 11, 30).resolution
    assert running is not None and running.state is ClockState.RUNNING
    assert running.elapsed == 1 * H
    stopped = story.moves(SOLVED[desk], *DAY, 11, 45).clocks(*DAY, 16, 0).resolution
    assert stopped is not None and stopped.state is ClockState.STOPPED
    assert stopped.elapsed == 75 * M
    assert stopped.reason.startswith("stopped: ")
    assert "at 2026-03-02 11:45" in stopped.reason


def test_resolution_starts_when_the_team_answers_without_starting_work_first() -> None:
    """Cloud partner: Submitted -> Waiting for customer. Answering is taking in charge."""
    story = Story("cloud-partner").moves("waiting_customer", *DAY, 10, 30)
    story.moves("in_progress", *DAY, 11, 0, role="requester")
    clock = story.clocks(*DAY, 11, 30).resolution
    assert clock is not None and clock.state is ClockState.RUNNING
    assert clock.elapsed == 30 * M  # paused while waiting for the customer


@pytest.mark.parametrize("desk", ["cloud-partner", "erp-vendor"])
def test_resolution_resumes_with_its_time_when_the_solution_is_disputed(desk: str) -> None:
    story = (
        Story(desk)
        .moves("in_progress", *DAY, 10, 0)
        .moves("resolved", *DAY, 11, 0)
        .moves("in_progress", *DAY, 15, 0, role="requester")
    )
    clock = story.clocks(*DAY, 15, 30).resolution
    assert clock is not None and clock.state is ClockState.RUNNING
    assert clock.elapsed == 90 * M


# --- pauses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desk", "waiting"),
    [
        ("erp-vendor", "waiting_customer"),
        ("cloud-partner", "waiting_customer"),
        ("cloud-partner", "waiting_third_party"),
    ],
)
def test_both_clocks_pause_while_waiting_for_the_customer_or_a_third_party(
    desk: str, waiting: str
) -> None:
    story = Story(desk).moves("in_progress", *DAY, 10, 0).moves(waiting, *DAY, 10, 30)
    clocks = story.clocks(*DAY, 17, 0)
    assert clocks.resolution is not None
    assert clocks.resolution.state is ClockState.PAUSED
    assert clocks.resolution.elapsed == 30 * M
    assert clocks.resolution.due_at is None
    assert clocks.resolution.reason.startswith("paused: Waiting for ")
    assert clocks.resolution.reason.endswith("since 2026-03-02 10:30 CET")
    story.moves("in_progress", *DAY, 16, 0, role="requester" if "customer" in waiting else "agent")
    resumed = story.clocks(*DAY, 17, 0).resolution
    assert resumed is not None and resumed.state is ClockState.RUNNING
    assert resumed.elapsed == 90 * M


def test_the_response_clock_pauses_while_waiting_for_a_third_party_at_the_cloud_partner() -> None:
    """Seed 003: "Le SLA de réponse est mis en pause sur ... En attente d'un tiers"."""
    story = Story("cloud-partner").moves("waiting_third_party", *DAY, 10, 30)
    clock = story.clocks(*DAY, 17, 0).response
    assert clock is not None and clock.state is ClockState.PAUSED
    assert clock.reason == "paused: Waiting for third party since 2026-03-02 10:30 CET"
    assert clock.elapsed == 30 * M


def test_the_reason_names_the_status_in_the_requesters_language() -> None:
    story = Story("cloud-partner").moves("in_progress", *DAY, 10, 0)
    story.moves("waiting_customer", *DAY, 10, 30)
    clocks = story.clocks(*DAY, 11, language="fr")
    assert clocks.resolution is not None
    assert clocks.resolution.reason == "paused: En attente du client since 2026-03-02 10:30 CET"


# --- targets, due and warning instants ----------------------------------------------------


@pytest.mark.parametrize("desk", DESKS)
def test_due_and_warning_instants_follow_the_priority_target(desk: str) -> None:
    story = Story(desk, priority="high")
    clock = story.clocks(*DAY, 10, 0).response
    target = story.target().response_time
    assert clock is not None and clock.target == target
    assert clock.due_at == story.calendar.add(story.at(*DAY, 10, 0), target)
    assert clock.warning_at == story.calendar.add(story.at(*DAY, 10, 0), target * 0.75)
    assert clock.remaining == target


def test_erp_high_priority_response_is_due_after_lunch_in_geneva() -> None:
    """Two business hours from 10:00 in Geneva: 10-12, then the lunch break does not count."""
    clock = Story("erp-vendor", priority="high").clocks(*DAY, 10, 0).response
    assert clock is not None
    assert clock.due_at == Story("erp-vendor").at(*DAY, 12, 0)
    assert clock.warning_at == Story("erp-vendor").at(*DAY, 11, 30)


def test_erp_medium_priority_response_skips_the_night_in_geneva() -> None:
    story = Story("erp-vendor", priority="medium", start=(2026, 3, 2, 16, 0))  # 8 h target
    clock = story.clocks(2026, 3, 2, 16, 0).response
    assert clock is not None
    # 16:00-17:30 (1.5 h), then Tuesday 08:00-12:00 (4 h), 13:30-16:00 (2.5 h)
    assert clock.due_at == story.at(2026, 3, 3, 16, 0)


def test_saas_response_skips_the_quebec_fete_nationale() -> None:
    story = Story("saas-desk", "low", "problem_report", start=(2026, 6, 23, 16, 0))  # 8 h target
    clock = story.clocks(2026, 6, 23, 16, 0).response
    assert clock is not None
    # 16:00-17:00 (1 h), 24 June closed, 25 June 08:30-15:30 (7 h)
    assert clock.due_at == story.at(2026, 6, 25, 15, 30)


@pytest.mark.parametrize("desk", DESKS)
def test_a_priority_change_retargets_a_running_clock(desk: str) -> None:
    story = Story(desk, priority="low").moves(TAKEN_IN_CHARGE[desk], *DAY, 10, 0)
    story.reprioritised("critical", *DAY, 10, 20)
    clock = story.clocks(*DAY, 10, 30).resolution
    critical = story.target("critical").resolution_time
    assert clock is not None and clock.priority == "critical" and clock.target == critical
    assert clock.elapsed == 30 * M  # the time already counted is kept
    assert clock.due_at == story.calendar.add(story.at(*DAY, 10, 0), critical)


def test_a_priority_change_does_not_retarget_a_stopped_clock() -> None:
    story = Story("erp-vendor", priority="low").moves("in_progress", *DAY, 10, 30)
    story.reprioritised("critical", *DAY, 11, 0)
    clock = story.clocks(*DAY, 11, 0).response
    assert clock is not None and clock.priority == "low"
    assert not clock.breached  # 30 min against the low target, not the critical hour


def test_lowering_the_priority_can_lift_a_breach_of_a_running_clock() -> None:
    story = Story("cloud-partner", priority="critical")  # 60 min response
    assert story.clocks(*DAY, 11, 30).response.breached  # type: ignore[union-attr]
    story.reprioritised("low", *DAY, 11, 30)
    clock = story.clocks(*DAY, 11, 30).response
    assert clock is not None and not clock.breached and clock.remaining == 960 * M - 90 * M


@pytest.mark.parametrize("desk", DESKS)
def test_a_breached_clock_says_when_it_was_due(desk: str) -> None:
    story = Story(desk, priority="critical")
    target = story.target().response_time
    clock = story.clocks(*DAY, 17, 0).response
    assert clock is not None and clock.breached
    assert clock.due_at == story.calendar.add(story.at(*DAY, 10, 0), target)
    assert clock.remaining is not None and clock.remaining < timedelta(0)
    stopped = story.moves(TAKEN_IN_CHARGE[desk], *DAY, 17, 0).clocks(*DAY, 17, 5).response
    assert stopped is not None and stopped.breached and stopped.due_at == clock.due_at


# --- request types ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desk", "request_type"),
    [
        ("erp-vendor", "patch"),
        ("erp-vendor", "patch_after_migration"),
        ("erp-vendor", "licence"),
        ("cloud-partner", "consulting"),
    ],
)
def test_request_types_that_are_not_sla_bound_have_no_clocks(desk: str, request_type: str) -> None:
    clocks = Story(desk, request_type=request_type).clocks(*DAY, 17, 0)
    assert not clocks.sla_bound
    assert clocks.response is None and clocks.resolution is None
    assert clocks.clocks == ()


def test_a_timeline_is_read_only_whole_and_up_to_the_latest_state() -> None:
    story = Story("erp-vendor").moves("in_progress", *DAY, 10, 30).commented(*DAY, 10, 40)
    timeline, state = story.published()
    created, started, commented = timeline.steps
    policy, calendar, now = story.policy, story.calendar, story.at(*DAY, 11)
    with pytest.raises(HistoryError, match="lacks version 1"):
        read_clocks(Timeline((started, commented)), state, policy, calendar, now)
    with pytest.raises(HistoryError, match="lacks version 2"):
        read_clocks(Timeline((created, commented)), state, policy, calendar, now)
    with pytest.raises(HistoryError, match="ends at version 2, the state is 3"):
        read_clocks(Timeline((created, started)), state, policy, calendar, now)
    unknown = Step(3, commented.at, "no_such_status", commented.priority)
    with pytest.raises(HistoryError, match="status 'no_such_status' is not in policy"):
        read_clocks(Timeline((created, started, unknown)), state, policy, calendar, now)
    assert read_clocks(timeline, state, policy, calendar, now).version == 3


def test_comments_do_not_move_the_clocks() -> None:
    story = Story("erp-vendor").commented(*DAY, 10, 30, role="requester")
    clock = story.clocks(*DAY, 11, 0).response
    assert clock is not None and clock.state is ClockState.RUNNING and clock.elapsed == H


def test_clock_readings_are_in_utc() -> None:
    clock = Story("saas-desk").clocks(*DAY, 11, 0).response
    assert clock is not None and clock.due_at is not None
    assert clock.due_at.utcoffset() == timedelta(0)
    assert clock.since == datetime(2026, 3, 2, 10, tzinfo=ZoneInfo("America/Toronto"))


# --- saas-desk specifics (seed 004) ---------------------------------------------------------


def test_saas_response_is_not_restarted_when_the_customer_replies_to_the_answer() -> None:
    story = (
        Story("saas-desk")
        .moves("assigned", *DAY, 10, 20)
        .moves("answered", *DAY, 11, 0)
        .moves("assigned", *DAY, 14, 0, role="requester")
    )
    clock = story.clocks(*DAY, 16, 0).response
    assert clock is not None and clock.state is ClockState.STOPPED
    assert clock.elapsed == 20 * M


def test_saas_resolution_stops_at_the_answer_and_resumes_when_the_customer_replies() -> None:
    """Seed 004: resolution runs from taking in charge to "une proposition de solution"."""
    story = Story("saas-desk").moves("assigned", *DAY, 10, 0).moves("answered", *DAY, 11, 0)
    stopped = story.clocks(*DAY, 15, 0).resolution
    assert stopped is not None and stopped.state is ClockState.STOPPED
    assert stopped.reason == "stopped: Answered at 2026-03-02 11:00 EST"
    story.moves("assigned", *DAY, 15, 0, role="requester")
    resumed = story.clocks(*DAY, 15, 30).resolution
    assert resumed is not None and resumed.state is ClockState.RUNNING
    assert resumed.elapsed == 90 * M


@pytest.mark.parametrize("priority", ["low", "medium", "high", "critical"])
def test_a_saas_system_error_is_due_before_an_information_request_of_its_priority(
    priority: str,
) -> None:
    """Seed 004: "Une distinction est également faite entre les différents types de billet"."""
    due: dict[str, tuple[datetime | None, datetime | None]] = {}
    for kind in ("system_error", "problem_report", "information_request"):
        story = Story("saas-desk", priority, kind)
        response = story.clocks(*DAY, 10, 0).response
        resolution = story.moves("assigned", *DAY, 10, 0).clocks(*DAY, 10, 0).resolution
        assert response is not None and response.target == story.target().response_time
        assert resolution is not None and resolution.target == story.target().resolution_time
        due[kind] = (response.due_at, resolution.due_at)
    for clock in (0, 1):
        error, problem, question = (due[kind][clock] for kind in due)
        assert error is not None and problem is not None and question is not None
        assert error < problem < question


def test_a_saas_request_keeps_the_targets_of_its_type_when_its_priority_changes() -> None:
    story = Story("saas-desk", "low", "system_error").moves("assigned", *DAY, 10, 0)
    story.reprioritised("high", *DAY, 10, 10)
    clock = story.clocks(*DAY, 10, 10).resolution
    assert clock is not None and clock.priority == "high"
    assert clock.target == timedelta(minutes=480)  # a system error's high, not the default 960
    assert clock.due_at == story.calendar.add(story.at(*DAY, 10, 0), clock.target)


@pytest.mark.parametrize("kind", ["information_request", "problem_report", "system_error"])
def test_every_saas_ticket_kind_is_sla_bound(kind: str) -> None:
    clocks = Story("saas-desk", request_type=kind).clocks(*DAY, 11, 0)
    assert clocks.sla_bound and clocks.response is not None and clocks.resolution is not None


def test_the_warning_share_comes_from_the_policy() -> None:
    story = Story("erp-vendor", priority="high")  # 2 h response target
    sla = story.policy.sla.model_copy(update={"warning_share": 0.5})
    story.policy = story.policy.model_copy(update={"sla": sla})
    clock = story.clocks(*DAY, 10, 0).response
    assert clock is not None and clock.warning_at == story.at(*DAY, 11, 0)
