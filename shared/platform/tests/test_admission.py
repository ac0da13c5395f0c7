"""Admission's decisions without servers (desk_platform.admission): which limit refuses, one
log line per shedding episode however many are refused, the episode ending only after a quiet
moment under both limits, a failed read of the backlog keeping the last value and logged once.
The doors themselves are tested on the real servers (services/intake/tests/integration)."""

from __future__ import annotations

from structlog.testing import capture_logs

from desk_platform.admission import QUIET_SECONDS, Admission, AdmissionLimits


class Backlog:
    """What the store would answer: a value, or a failure."""

    def __init__(self) -> None:
        self.value = 0
        self.failing = False

    async def __call__(self) -> int:
        if self.failing:
            raise ConnectionRefusedError("PostgreSQL is out of reach")
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def admission(backlog: Backlog, clock: Clock) -> Admission:
    return Admission(backlog, AdmissionLimits(max_backlog=10, max_in_flight=2), clock=clock)


async def test_each_limit_refuses_with_its_reason_and_reads_are_left_to_the_doors() -> None:
    backlog, clock = Backlog(), Clock()
    gate = admission(backlog, clock)
    backlog.value = 10
    await gate.refresh()
    assert gate.refusal("http") is None, "at the limit is not past it"
    backlog.value = 11
    await gate.refresh()
    assert gate.refusal("http") == "11 events wait to be published, more than 10"
    backlog.value = 0
    await gate.refresh()
    with gate.handling():
        assert gate.refusal("smtp") is None
        with gate.handling():
            assert gate.refusal("smtp") == "2 being handled at once, at most 2"
    assert gate.in_flight == 0 and gate.refusal("smtp") is None
    rendered = gate.metrics.render().decode()
    assert 'desk_shed_total{door="http"} 1.0' in rendered
    assert 'desk_shed_total{door="smtp"} 1.0' in rendered


async def test_one_episode_is_logged_once_and_ends_after_a_quiet_moment() -> None:
    backlog, clock = Backlog(), Clock()
    gate = admission(backlog, clock)
    backlog.value = 50
    with capture_logs() as logs:
        await gate.refresh()
        for _ in range(100):
            assert gate.refusal("http") is not None
            clock.now += 0.01
        backlog.value = 0
        await gate.refresh()
        assert gate.shedding, "refused a moment ago: not over yet"
        clock.now += QUIET_SECONDS
        await gate.refresh()
        assert not gate.shedding
        await gate.refresh()
    assert [e["event"] for e in logs] == ["shedding_started", "shedding_stopped"]
    started, stopped = logs
    assert started["reason"] == "50 events wait to be published, more than 10"
    assert (stopped["refused"], stopped["seconds"], stopped["backlog"]) == (100, 2.0, 0)


async def test_still_past_capacity_the_episode_goes_on_without_refusals() -> None:
    backlog, clock = Backlog(), Clock()
    gate = admission(backlog, clock)
    backlog.value = 50
    await gate.refresh()
    assert gate.refusal("smtp") is not None
    clock.now += 10 * QUIET_SECONDS  # nobody knocked, but the backlog has not drained
    await gate.refresh()
    assert gate.shedding and "desk_shedding 1.0" in gate.metrics.render().decode()


async def test_a_failed_read_keeps_the_last_backlog_and_is_logged_once() -> None:
    backlog, clock = Backlog(), Clock()
    gate = admission(backlog, clock)
    backlog.value = 50
    await gate.refresh()
    backlog.failing = True
    with capture_logs() as logs:
        for _ in range(5):
            await gate.refresh()
        assert gate.backlog == 50 and gate.refusal("http") is not None
        backlog.failing, backlog.value = False, 3
        await gate.refresh()
        backlog.failing = True
        await gate.refresh()
    unread = [e for e in logs if e["event"] == "admission_backlog_unread"]
    assert len(unread) == 2, "once per run of failures"
    assert "ConnectionRefusedError: PostgreSQL is out of reach" in unread[0]["error"]
    assert gate.backlog == 3


class Lag:
    """What the broker would answer: the slowest group's lag in seconds."""

    def __init__(self) -> None:
        self.value = 0.0
        self.closed = False

    async def read(self) -> float:
        return self.value

    async def close(self) -> None:
        self.closed = True


async def test_the_pipeline_s_lag_refuses_past_its_limit_and_is_not_read_when_off() -> None:
    backlog, clock, lag = Backlog(), Clock(), Lag()
    limits = AdmissionLimits(max_backlog=10, max_in_flight=2, max_lag_seconds=1.5)
    gate = Admission(backlog, limits, clock=clock, lag=lag)
    lag.value = 1.5
    await gate.refresh()
    assert gate.refusal("http") is None, "at the limit is not past it"
    lag.value = 2.25
    await gate.refresh()
    assert gate.refusal("http") == "the services downstream are 2.2 s behind, more than 1.5 s"
    assert "desk_admission_lag_seconds 2.25" in gate.metrics.render().decode()

    unwatched = Admission(backlog, AdmissionLimits(max_lag_seconds=0), clock=clock, lag=lag)
    await unwatched.refresh()
    assert unwatched.lag == 0 and unwatched.refusal("http") is None


async def test_work_waiting_for_the_database_refuses_past_its_limit() -> None:
    backlog, clock = Backlog(), Clock()
    waited = [0.5]
    limits = AdmissionLimits(max_backlog=10, max_in_flight=2, max_wait_seconds=0.5)
    gate = Admission(backlog, limits, clock=clock, waited=lambda: waited[0])
    assert gate.refusal("http") is None, "at the limit is not past it"
    waited[0] = 0.75
    assert gate.refusal("http") == "work waits 0.8 s for the database here, more than 0.5 s"
    unwatched = Admission(backlog, AdmissionLimits(max_wait_seconds=0), waited=lambda: 9.0)
    assert unwatched.refusal("http") is None
