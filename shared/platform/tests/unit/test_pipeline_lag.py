"""The lag of a consumer group from two reads of its offsets (desk_platform.pipeline_lag), and
the setting naming the watched groups; the reads themselves are tested on the real broker
(shared/platform/tests/test_pipeline_lag.py)."""

from __future__ import annotations

import pytest

from desk_platform.pipeline_lag import GroupProgress, watched_groups


def test_the_lag_is_what_waits_at_the_rate_the_group_takes_it() -> None:
    group = GroupProgress("workflow.ticket-commands", "ticket-commands")
    group.moved(waiting=400, taken=1_000, now=10.0)
    assert group.seconds == 0, "one read tells no rate yet"
    group.moved(waiting=300, taken=1_100, now=10.5)  # 200 records a second
    assert group.rate == 200
    assert group.seconds == pytest.approx(1.5)
    group.moved(waiting=0, taken=1_400, now=11.0)
    assert group.seconds == 0, "nothing waits"
    assert group.rate == 200, "an interval it was idle at the end of measures nothing"


def test_a_group_that_does_not_move_counts_as_stopped_not_behind() -> None:
    group = GroupProgress("notifier.ticket-events", "ticket-events")
    group.moved(waiting=50, taken=10, now=1.0)
    group.moved(waiting=40, taken=20, now=2.0)
    assert group.seconds == 4
    group.moved(waiting=5_000, taken=20, now=3.0)
    assert group.stalled and group.seconds == 0
    group.moved(waiting=4_990, taken=30, now=4.0)
    assert not group.stalled and group.seconds == 499


def test_the_rate_is_measured_only_while_the_group_is_busy_and_smoothed() -> None:
    group = GroupProgress("sla.ticket-events", "ticket-events")
    group.moved(waiting=0, taken=0, now=0.0)
    group.moved(waiting=0, taken=5, now=1.0)  # idle: 5 a second is the arrivals' pace
    group.moved(waiting=100, taken=6, now=2.0)  # a burst arrives
    assert group.rate == 0 and group.seconds == 0, "its pace is not known yet"
    group.moved(waiting=50, taken=106, now=3.0)
    assert group.rate == 100
    group.moved(waiting=50, taken=156, now=4.0)
    assert 50 < group.rate < 100
    assert 0.5 < group.seconds < 1


def test_the_setting_names_each_service_and_topic_as_this_deployment_does() -> None:
    def prefixed(name: str) -> str:
        return "t1." + name

    setting = " workflow@ticket-commands, notifier@ticket-events,,"
    assert watched_groups(setting, prefixed) == [
        ("workflow.t1.ticket-commands", "t1.ticket-commands"),
        ("notifier.t1.ticket-events", "t1.ticket-events"),
    ]
    assert watched_groups("", prefixed) == []
