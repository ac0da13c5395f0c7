"""What if: the verdicts of hand-built requests under the terms in force and under a scenario
(`sla.domain.whatif`, `sla.domain.scenario`), and the report's CSV and PNG files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from published import published_states
from sla_stories import CALENDARS, Story

from desk_policies.calendars import Weekday
from desk_policies.loader import load_policies
from sla.domain.clocks import ClockKind
from sla.domain.compliance import Row
from sla.domain.scenario import (
    ScenarioError,
    apply_scenario,
    hours_override,
    merged,
    target_override,
)
from sla.domain.whatif import Histories, Period, Verdict, WhatIf, compare, terms_of, verdicts
from sla.entrypoints.report_files import (
    changes_csv,
    compliance_csv,
    compliance_png,
    whatif_csv,
    whatif_png,
)
from sla.entrypoints.whatif import reading_instant

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE = ROOT / "docs" / "whatif" / "erp-vendor-critical-30min-saturday.yaml"
POLICIES = load_policies()
NOW_TERMS = terms_of(POLICIES, CALENDARS)
M = timedelta(minutes=1)


def example() -> Any:
    return yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))


def histories(*stories: Story, period: Period | None = None) -> Histories:
    """The stories' published states as the log gives them, one record each."""
    gathered = Histories(period or Period())
    for number, story in enumerate(stories):
        for state in published_states(story.events, story.policy):
            data = state.model_dump(mode="json")
            data["ticket_id"], data["key"] = f"T-{number}", f"SPT-{number}"
            gathered.add(data)
    return gathered


def what_if(*stories: Story, until: datetime, scenario: Any = None) -> WhatIf:
    alternative = apply_scenario(scenario or example(), POLICIES, CALENDARS)
    gathered = histories(*stories)
    return compare(
        gathered.requests.values(),
        NOW_TERMS,
        terms_of(alternative.policies, alternative.calendars),
        until,
    )


def answered_in_45_minutes() -> Story:
    """A critical erp-vendor request opened Monday 10:00 in Geneva, taken in charge at 10:45."""
    return Story("erp-vendor", priority="critical").moves("in_progress", 2026, 3, 2, 10, 45)


def test_a_critical_request_answered_in_45_minutes_breaches_a_30_minute_target() -> None:
    story = answered_in_45_minutes()
    report = what_if(story, until=story.at(2026, 3, 2, 18, 0))
    (change,) = report.changes
    assert change.clock is ClockKind.RESPONSE
    assert (change.before.verdict, change.after.verdict) == (Verdict.KEPT, Verdict.BREACHED)
    assert change.before.elapsed == change.after.elapsed == 45 * M
    assert (change.before.target, change.after.target) == (60 * M, 30 * M)
    assert report.breaches_now[ClockKind.RESPONSE] == 0
    assert report.breach_difference(ClockKind.RESPONSE) == 1
    assert report.breach_difference(ClockKind.RESOLUTION) == 0
    (row,) = report.rows
    assert (row.month, row.priority, row.requests) == ("2026-03", "critical", 1)
    assert (row.now.response_kept, row.alternative.response_kept) == (1.0, 0.0)


def test_a_request_opened_on_saturday_morning_counts_only_under_the_saturday_calendar() -> None:
    # Saturday 7 March 2026, 10:00 in Geneva; taken in charge on Monday at 08:20
    story = Story("erp-vendor", priority="low", start=(2026, 3, 7, 10, 0))
    story.moves("in_progress", 2026, 3, 9, 8, 20)
    report = what_if(story, until=story.at(2026, 3, 9, 18, 0))
    assert report.changes == ()  # a low request keeps its 960 minutes both ways
    alternative = apply_scenario(example(), POLICIES, CALENDARS)
    (history,) = histories(story).requests.values()
    now = verdicts(history, NOW_TERMS, story.at(2026, 3, 9, 18, 0))
    then = verdicts(
        history, terms_of(alternative.policies, alternative.calendars), story.at(2026, 3, 9, 18)
    )
    assert now.response.elapsed == 20 * M  # today the clock starts on Monday at 08:00
    assert then.response.elapsed == 2 * 60 * M + 20 * M  # Saturday 10:00-12:00 counts too


def test_a_saturday_critical_request_answered_on_monday_is_breached_only_under_the_scenario() -> (
    None
):
    story = Story("erp-vendor", priority="critical", start=(2026, 3, 7, 10, 0))
    story.moves("in_progress", 2026, 3, 9, 8, 20)
    report = what_if(story, until=story.at(2026, 3, 9, 18, 0))
    (change,) = report.changes
    assert (change.before.verdict, change.after.verdict) == (Verdict.KEPT, Verdict.BREACHED)
    assert (change.before.elapsed, change.after.elapsed) == (20 * M, 140 * M)


def test_a_clock_still_counting_at_the_period_end_is_open_and_breached_once_past_its_target() -> (
    None
):
    story = Story("erp-vendor", priority="critical")  # opened Monday 10:00, nobody answered
    early = what_if(story, until=story.at(2026, 3, 2, 10, 40))
    (change,) = early.changes
    assert (change.before.verdict, change.after.verdict) == (Verdict.OPEN, Verdict.BREACHED)
    late = what_if(story, until=story.at(2026, 3, 2, 12, 0))
    assert late.changes == ()
    assert late.breaches_now[ClockKind.RESPONSE] == late.breaches_alternative[ClockKind.RESPONSE]


def test_the_period_leaves_out_later_events_and_requests_created_outside_it() -> None:
    story = answered_in_45_minutes()
    before_answer = Period(end=story.at(2026, 3, 2, 10, 30))
    gathered = histories(story, period=before_answer)
    (history,) = gathered.requests.values()
    assert [step[2] for step in history.steps] == ["open"]  # the answer at 10:45 is after it
    april = datetime(2026, 4, 1, tzinfo=UTC)
    report = compare(
        histories(story).requests.values(), NOW_TERMS, NOW_TERMS, april, Period(start=april)
    )
    assert report.requests == 0


def test_a_state_told_twice_counts_once() -> None:
    story = answered_in_45_minutes()
    gathered = Histories()
    states = [s.model_dump(mode="json") for s in published_states(story.events, story.policy)]
    gathered.add_all([states[0], states[0], states[1], states[1]])
    assert gathered.duplicates == 2
    (history,) = gathered.requests.values()
    assert [step[0] for step in history.steps] == [1, 2]


def test_a_request_living_on_a_test_clock_is_left_out() -> None:
    story = answered_in_45_minutes()
    gathered = Histories()
    states = [s.model_dump(mode="json") for s in published_states(story.events, story.policy)]
    gathered.add_all([{**state, "test_clock": "tc-demo"} for state in states])
    assert gathered.requests == {}
    assert gathered.on_test_clocks == len(states)


def test_a_request_of_an_unknown_desk_is_reported_unreadable_with_why() -> None:
    story = answered_in_45_minutes()
    gathered = histories(story)
    (history,) = gathered.requests.values()
    history.state = {**history.state, "policy_id": "nowhere"}
    report = compare(gathered.requests.values(), NOW_TERMS, NOW_TERMS, story.at(2026, 3, 3, 9))
    assert report.requests == 0
    assert report.unreadable == (("T-0", "desk 'nowhere' has no policy here"),)


def test_overrides_say_what_the_example_file_says() -> None:
    data = merged({}, target_override("erp-vendor.critical.response=30"))
    data = hours_override("erp-vendor.saturday=09:00-12:00", data, POLICIES)
    by_overrides = apply_scenario(data, POLICIES, CALENDARS)
    by_file = apply_scenario(example(), POLICIES, CALENDARS)
    policy = by_overrides.policies["erp-vendor"]
    assert policy.sla.targets == by_file.policies["erp-vendor"].sla.targets
    assert policy.sla.targets["critical"].resolution == 480  # the other clock kept
    saturday = by_overrides.calendars[policy.sla.calendar].weekly_hours
    assert saturday == by_file.calendars[by_file.policies["erp-vendor"].sla.calendar].weekly_hours
    assert by_overrides.changed == {"erp-vendor"}
    assert by_overrides.policies["saas-desk"] is POLICIES["saas-desk"]


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ({"policies": {"nowhere": {"sla": {}}}}, "no such desk"),
        ({"policies": {"erp-vendor": {"statuses": []}}}, "changes a desk's `sla` only"),
        ({"policies": {"erp-vendor": {"sla": {"calendar": "mars"}}}}, "mars"),
        ({"calendars": {"x": {"extends": "atlantis"}}}, "extend unknown calendars"),
        ({"calendars": {"x": {"extends": "always", "weekly_hours": {"funday": []}}}}, "funday"),
        ({"policies": {"erp-vendor": {"sla": {"targets": {"critical": {"response": 0}}}}}}, "0"),
    ],
)
def test_a_scenario_that_a_policy_could_not_say_is_refused_with_why(
    scenario: Any, reason: str
) -> None:
    with pytest.raises(ScenarioError, match=reason):
        apply_scenario(scenario, POLICIES, CALENDARS)


def test_overrides_that_cannot_be_read_are_refused() -> None:
    with pytest.raises(ScenarioError, match=r"DESK\.PRIORITY"):
        target_override("erp-vendor.critical=30")
    with pytest.raises(ScenarioError, match="WEEKDAY"):
        hours_override("erp-vendor.caturday=09:00-12:00", {}, POLICIES)


def test_the_report_is_written_as_csv_and_png(tmp_path: Path) -> None:
    story = answered_in_45_minutes()
    report = what_if(story, until=story.at(2026, 3, 2, 18, 0))
    whatif_csv(report, tmp_path / "compliance.csv")
    changes_csv(report, tmp_path / "changes.csv")
    whatif_png(report, tmp_path / "compliance.png", "what if")
    with (tmp_path / "compliance.csv").open(encoding="utf-8") as rows:
        header, row = list(csv.reader(rows))
    assert dict(zip(header, row, strict=True)) == {
        "month": "2026-03",
        "priority": "critical",
        "requests": "1",
        "response_kept_%_now": "100.0",
        "response_kept_%_alternative": "0.0",
        "resolution_kept_%_now": "100.0",
        "resolution_kept_%_alternative": "100.0",
        "response_breached_now": "0",
        "response_breached_alternative": "1",
        "resolution_breached_now": "0",
        "resolution_breached_alternative": "0",
    }
    with (tmp_path / "changes.csv").open(encoding="utf-8") as rows:
        (changed,) = list(csv.DictReader(rows))
    assert changed["key"] == "SPT-0"
    assert (changed["verdict_now"], changed["verdict_alternative"]) == ("kept", "breached")
    assert (changed["elapsed_min_now"], changed["target_min_alternative"]) == ("45.0", "30.0")
    assert (tmp_path / "compliance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_compliance_report_is_written_as_csv_and_png(tmp_path: Path) -> None:
    rows = [Row("2026-03", "critical", 4, 1, 0), Row("2026-04", "critical", 2, 0, 2)]
    compliance_csv(rows, tmp_path / "compliance.csv")
    compliance_png(rows, tmp_path / "compliance.png", "compliance")
    with (tmp_path / "compliance.csv").open(encoding="utf-8") as lines:
        assert list(csv.reader(lines)) == [
            ["month", "priority", "requests", "response_kept_%", "resolution_kept_%"],
            ["2026-03", "critical", "4", "75.0", "100.0"],
            ["2026-04", "critical", "2", "100.0", "0.0"],
        ]
    assert (tmp_path / "compliance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_open_clocks_are_read_at_the_period_end_unless_the_log_ends_sooner() -> None:
    story = answered_in_45_minutes()
    gathered = histories(story, period=Period(end=story.at(2026, 3, 2, 10, 30)))
    assert gathered.last_at == story.at(2026, 3, 2, 10, 0)  # the creation, the one event kept
    assert gathered.log_ends_at == story.at(2026, 3, 2, 10, 45)  # the answer, read and left out
    june = Period(end=datetime(2026, 6, 1, tzinfo=UTC))
    assert reading_instant(june, histories(story)) == story.at(2026, 3, 2, 10, 45)
    half_past = Period(end=story.at(2026, 3, 2, 10, 30))
    assert reading_instant(half_past, gathered) == story.at(2026, 3, 2, 10, 30)


def test_under_the_terms_in_force_nothing_changes() -> None:
    story = answered_in_45_minutes()
    saturday = Story("erp-vendor", priority="high", start=(2026, 3, 7, 10, 0))
    saturday.moves("in_progress", 2026, 3, 9, 8, 20)
    unchanged = apply_scenario({}, POLICIES, CALENDARS)
    report = compare(
        histories(story, saturday).requests.values(),
        NOW_TERMS,
        terms_of(unchanged.policies, unchanged.calendars),
        story.at(2026, 3, 9, 18, 0),
    )
    assert (report.requests, report.changes, report.unreadable) == (2, (), ())
    assert report.breaches_now == report.breaches_alternative
    assert unchanged.changed == frozenset()


def test_the_requests_read_on_two_cores_make_the_same_report(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sla.entrypoints.whatif as command

    monkeypatch.setattr(command, "FEW", 0)
    stories = [answered_in_45_minutes() for _ in range(3)]
    stories.append(Story("erp-vendor", priority="high", start=(2026, 3, 7, 10, 0)))
    stories[-1].moves("in_progress", 2026, 3, 9, 8, 20)
    alternative = apply_scenario(example(), POLICIES, CALENDARS)
    arguments = (
        list(histories(*stories).requests.values()),
        NOW_TERMS,
        terms_of(alternative.policies, alternative.calendars),
        stories[0].at(2026, 3, 9, 18, 0),
        Period(),
        None,
    )
    on_one = compare(*arguments)
    on_two = command.compare_on_cores(*arguments, workers=2)
    assert on_two == on_one
    assert len(on_two.changes) == 4


def test_a_whole_policy_file_and_a_calendar_file_make_the_alternative(tmp_path: Path) -> None:
    from desk_policies.loader import POLICIES_DIR
    from sla.entrypoints.whatif import alternative

    policy = yaml.safe_load((POLICIES_DIR / "erp-vendor.yaml").read_text(encoding="utf-8"))
    policy["sla"]["calendar"] = "geneva-six-days"
    policy["sla"]["targets"]["critical"]["response"] = 30
    (tmp_path / "erp-vendor.yaml").write_text(yaml.safe_dump(policy), encoding="utf-8")
    calendar = CALENDARS["ch-geneva-business"].model_dump(mode="json")
    calendar["id"] = "geneva-six-days"
    calendar["weekly_hours"]["saturday"] = ["09:00-12:00"]
    (tmp_path / "geneva-six-days.yaml").write_text(yaml.safe_dump(calendar), encoding="utf-8")
    scenario = alternative(
        dict(POLICIES),
        dict(CALENDARS),
        [tmp_path / "erp-vendor.yaml"],
        [tmp_path / "geneva-six-days.yaml"],
        [],
        ["erp-vendor.sunday=10:00-11:00"],
    )
    assert scenario.changed == {"erp-vendor"}
    assert scenario.title == "policy erp-vendor.yaml; erp-vendor.sunday=10:00-11:00"
    changed = scenario.policies["erp-vendor"]
    assert changed.sla.targets["critical"].response == 30
    hours = scenario.calendars[changed.sla.calendar].weekly_hours
    assert changed.sla.calendar == "geneva-six-days-whatif"  # the file's calendar, copied
    assert [str(i) for i in hours[Weekday.SATURDAY]] == ["09:00-12:00"]
    assert [str(i) for i in hours[Weekday.SUNDAY]] == ["10:00-11:00"]
