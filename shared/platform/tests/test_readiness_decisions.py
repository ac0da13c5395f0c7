"""The pure readiness decisions: given these observations and this time, is the process stuck?"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from desk_platform.readiness import (
    LEADER,
    NO_LEADER,
    STANDBY,
    OutboxObservation,
    PartitionProgress,
    Report,
    Verdict,
    backlog_verdict,
    consumer_verdict,
    outbox_verdict,
    stalled_seconds,
    track,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def outbox(role: str, waiting: int, oldest: float | None, moved: float | None) -> Verdict:
    seen = OutboxObservation(
        role,
        waiting,
        None if oldest is None else ago(oldest),
        None if moved is None else ago(moved),
        NOW,
    )
    return outbox_verdict(seen, threshold=30)


def test_a_leader_with_nothing_waiting_is_ready() -> None:
    assert outbox(LEADER, 0, None, 3600) == Verdict(True, "leader: every event is published")


def test_events_waiting_past_the_threshold_while_the_checkpoint_stays_put_is_stuck() -> None:
    verdict = outbox(LEADER, 3, oldest=41, moved=300)
    assert not verdict.ok
    assert verdict.detail == (
        "leader: relay not advancing: 3 events wait, the oldest for 41 s; "
        "the checkpoint last moved 300 s ago (threshold 30 s)"
    )


def test_events_younger_than_the_threshold_are_fine() -> None:
    assert outbox(LEADER, 3, oldest=29, moved=300).ok


def test_a_relay_catching_up_on_a_backlog_moves_its_checkpoint_and_is_fine() -> None:
    assert outbox(LEADER, 90_000, oldest=600, moved=1).ok
    assert not outbox(LEADER, 90_000, oldest=600, moved=31).ok


def test_a_checkpoint_that_never_moved_counts_from_the_oldest_event() -> None:
    verdict = outbox(LEADER, 1, oldest=31, moved=None)
    assert not verdict.ok
    assert "the checkpoint has never moved" in verdict.detail


def test_a_standby_is_fine_even_when_events_wait() -> None:
    verdict = outbox(STANDBY, 5, oldest=3600, moved=3600)
    assert verdict == Verdict(True, "standby: another replica's relay publishes this store")


def test_nobody_leading_while_events_wait_is_stuck() -> None:
    # the leader's relay failing again and again drops its lock between attempts
    verdict = outbox(NO_LEADER, 1, oldest=45, moved=600)
    assert not verdict.ok
    assert verdict.detail.startswith("no replica holds the relay lock: relay not advancing")


P0, P1 = ("ticket-events", 0), ("ticket-events", 1)


def test_a_partition_whose_committed_offset_does_not_move_while_records_wait_is_stuck() -> None:
    progress = track({}, {P0: (10, 11), P1: (5, 5)}, ago(61))
    progress = track(progress, {P0: (10, 11), P1: (5, 7)}, ago(1))
    progress = track(progress, {P0: (10, 12), P1: (5, 7)}, NOW)  # P1 waits since 1 s only
    verdict = consumer_verdict(progress, NOW, threshold=60)
    assert not verdict.ok
    assert verdict.detail == (
        "not making progress: ticket-events/0: 2 records wait at offset 10, unmoved for 61 s "
        "(threshold 60 s)"
    )
    assert stalled_seconds(progress, NOW) == 61


def test_a_moving_offset_or_an_empty_partition_resets_the_clock() -> None:
    progress = track({}, {P0: (10, 11)}, ago(120))
    progress = track(progress, {P0: (11, 13)}, ago(30))  # moved: waits since 30 s only
    assert consumer_verdict(progress, NOW, threshold=60).ok
    progress = track({}, {P0: (10, 10)}, ago(120))  # nothing waited then
    progress = track(progress, {P0: (10, 11)}, ago(1))  # a record arrived since: waits from now
    assert progress[P0].since == ago(1)
    verdict = consumer_verdict(progress, NOW, threshold=60)
    assert verdict == Verdict(True, "1 partitions assigned, 1 records waiting")


def test_a_partition_newly_assigned_starts_counting_now_and_lost_ones_are_forgotten() -> None:
    progress = track({}, {P0: (10, 11)}, ago(120))
    progress = track(progress, {P1: (3, 9)}, NOW)
    assert set(progress) == {P1}
    assert progress[P1] == PartitionProgress(3, 9, NOW)
    assert consumer_verdict(progress, NOW, threshold=60).ok


def test_a_replica_without_partitions_is_fine() -> None:
    verdict = consumer_verdict({}, NOW, threshold=60)
    assert verdict.ok and "no partition assigned" in verdict.detail


def test_messages_pending_longer_than_the_threshold_are_stuck() -> None:
    assert backlog_verdict("messages", 0, None, NOW, 300) == Verdict(True, "no messages pending")
    assert backlog_verdict("messages", 4, ago(299), NOW, 300).ok
    verdict = backlog_verdict("messages", 4, ago(3600), NOW, 300)
    assert verdict == Verdict(False, "4 messages pending, the oldest for 3600 s (threshold 300 s)")


def test_the_report_names_the_failing_checks_and_why() -> None:
    report = Report({"postgres": Verdict(True, "answers"), "relay": Verdict(False, "stuck")})
    assert not report.ready
    assert report.body() == {
        "status": "not ready",
        "failing": ["relay"],
        "checks": {
            "postgres": {"ok": True, "detail": "answers"},
            "relay": {"ok": False, "detail": "stuck"},
        },
    }
    assert Report({"postgres": Verdict(True, "answers")}).body()["status"] == "ready"
