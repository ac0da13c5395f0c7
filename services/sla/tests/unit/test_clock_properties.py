"""Properties of the SLA calculator over random ticket histories (Hypothesis), each read as
workflow publishes it (the timeline and latest state of `sla_stories.published`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sla_stories import published

from desk_contracts.base import Event
from desk_contracts.tickets import PriorityChanged, StatusChanged, TicketCreated
from desk_policies import DeskPolicy, shipped_policy
from desk_policies.calendars import shipped_calendars
from sla.domain.business_time import BusinessTime, as_utc
from sla.domain.clocks import ClockKind, ClockReading, ClockState, TicketClocks, read_clocks
from sla.domain.timers import TimerKind, plan_timers

CALENDARS = {cid: BusinessTime(c) for cid, c in shipped_calendars().items()}
CLOUD = shipped_policy("cloud-partner")
ERP = shipped_policy("erp-vendor")
PRIORITIES = [p.id for p in CLOUD.priorities]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Around the 2026 daylight-saving changes of Europe and North America, and ordinary weeks.
STARTS = [
    datetime(2026, 3, 2, 8, tzinfo=UTC),
    datetime(2026, 3, 26, 8, tzinfo=UTC),
    datetime(2026, 10, 22, 8, tzinfo=UTC),
    datetime(2026, 12, 22, 8, tzinfo=UTC),
]


def created(policy: DeskPolicy, at: datetime, priority: str) -> TicketCreated:
    return TicketCreated(
        ticket_id="T-1",
        occurred_at=at,
        key="SUP-1",
        policy_id=policy.id,
        request_type=policy.request_types[0].id,
        priority=priority,
        subject="s",
        description="d",
        organisation_id="acme",
        requester_id="alice@acme.test",
        created_by="alice@acme.test",
        channel="portal",
    )


def moved(at: datetime, from_status: str, to_status: str) -> StatusChanged:
    return StatusChanged(
        ticket_id="T-1",
        occurred_at=at,
        actor_id="agent",
        actor_role="agent",
        from_status=from_status,
        to_status=to_status,
    )


def reprioritised(at: datetime, old: str, new: str) -> PriorityChanged:
    return PriorityChanged(
        ticket_id="T-1",
        occurred_at=at,
        actor_id="lead",
        actor_role="team_lead",
        from_priority=old,
        to_priority=new,
    )


gaps = st.integers(min_value=1, max_value=3 * 24 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def working_histories(draw: st.DrawFn, policy: DeskPolicy) -> tuple[list[Event], datetime]:
    """Created, taken in charge (In progress), then priority changes: both clocks may run."""
    at = draw(st.sampled_from(STARTS)) + draw(gaps)
    priority = draw(st.sampled_from(PRIORITIES))
    events: list[Event] = [created(policy, at, priority)]
    at += draw(gaps)
    events.append(moved(at, policy.initial_status, "in_progress"))
    for new in draw(st.lists(st.sampled_from(PRIORITIES), max_size=4)):
        at += draw(gaps)
        events.append(reprioritised(at, priority, new))
        priority = new
    return events, at + draw(gaps)


def with_pause(
    events: list[Event], now: datetime, status: str, position: int, share: tuple[float, float]
) -> list[Event]:
    """The same history with a stay in `status` inserted after event `position` (>= 1)."""
    position = max(1, min(position, len(events) - 1))
    begin = events[position].occurred_at
    end = events[position + 1].occurred_at if position + 1 < len(events) else now
    low, high = sorted(share)
    pause_at = begin + (end - begin) * low
    resume_at = begin + (end - begin) * high
    return [
        *events[: position + 1],
        moved(pause_at, "in_progress", status),
        moved(resume_at, status, "in_progress"),
        *events[position + 1 :],
    ]


def clocks_of(
    events: list[Event], policy: DeskPolicy, calendar: BusinessTime, now: datetime
) -> TicketClocks:
    timeline, state = published(events, policy)
    return read_clocks(timeline, state, policy, calendar, now)


def clock(events: list[Event], policy: DeskPolicy, now: datetime, kind: ClockKind) -> ClockReading:
    clocks = clocks_of(events, policy, CALENDARS[policy.sla.calendar], now)
    reading = clocks.response if kind is ClockKind.RESPONSE else clocks.resolution
    assert reading is not None
    return reading


shares = st.tuples(st.floats(0, 1), st.floats(0, 1))


@SETTINGS
@given(story=working_histories(CLOUD), position=st.integers(1, 6), share=shares)
def test_pausing_never_brings_a_due_instant_earlier(
    story: tuple[list[Event], datetime], position: int, share: tuple[float, float]
) -> None:
    events, now = story
    paused = with_pause(events, now, "waiting_third_party", position, share)
    for kind in ClockKind:
        before, after = clock(events, CLOUD, now, kind), clock(paused, CLOUD, now, kind)
        assert before.state is after.state is ClockState.RUNNING
        assert before.due_at is not None and after.due_at is not None
        assert after.due_at >= before.due_at
        assert after.elapsed <= before.elapsed


@SETTINGS
@given(story=working_histories(ERP), position=st.integers(1, 6), share=shares)
def test_waiting_for_the_customer_never_brings_the_resolution_due_earlier(
    story: tuple[list[Event], datetime], position: int, share: tuple[float, float]
) -> None:
    events, now = story
    paused = with_pause(events, now, "waiting_customer", position, share)
    before = clock(events, ERP, now, ClockKind.RESOLUTION)
    after = clock(paused, ERP, now, ClockKind.RESOLUTION)
    assert before.due_at is not None and after.due_at is not None
    assert after.due_at >= before.due_at


@SETTINGS
@given(story=working_histories(CLOUD), position=st.integers(1, 6), share=shares)
def test_on_a_24_7_calendar_a_clock_counts_wall_clock_time_except_pauses(
    story: tuple[list[Event], datetime], position: int, share: tuple[float, float]
) -> None:
    events, now = story
    paused = with_pause(events, now, "waiting_third_party", position, share)
    always = CALENDARS["always"]
    clocks = clocks_of(paused, CLOUD, always, now)
    assert clocks.response is not None and clocks.resolution is not None
    [pause_at, resume_at] = [e.occurred_at for e in paused if isinstance(e, StatusChanged)][1:]
    pause = resume_at - pause_at
    assert clocks.response.elapsed == now - events[0].occurred_at - pause
    assert clocks.resolution.elapsed == now - events[1].occurred_at - pause


@SETTINGS
@given(
    story=working_histories(CLOUD),
    calendar=st.sampled_from(sorted(CALENDARS)),
)
def test_time_left_is_the_business_time_until_the_due_instant(
    story: tuple[list[Event], datetime], calendar: str
) -> None:
    events, now = story
    for reading in clocks_of(events, CLOUD, CALENDARS[calendar], now).clocks:
        assert reading.due_at is not None and reading.remaining is not None
        if reading.breached:
            assert reading.due_at <= now and reading.remaining <= timedelta(0)
        else:
            assert CALENDARS[calendar].between(now, reading.due_at) == reading.remaining
        assert reading.warning_at is not None and reading.warning_at <= reading.due_at


@SETTINGS
@given(story=working_histories(CLOUD), calendar=st.sampled_from(sorted(CALENDARS)))
def test_business_time_never_exceeds_wall_clock_time(
    story: tuple[list[Event], datetime], calendar: str
) -> None:
    events, now = story
    for reading in clocks_of(events, CLOUD, CALENDARS[calendar], now).clocks:
        assert timedelta(0) <= reading.elapsed <= now - events[0].occurred_at


@SETTINGS
@given(story=working_histories(CLOUD))
def test_warnings_of_business_calendars_are_sent_in_business_hours(
    story: tuple[list[Event], datetime],
) -> None:
    events, now = story
    paris = CALENDARS[CLOUD.sla.calendar]
    urgent = clocks_of(events, CLOUD, paris, now).priority == "critical"
    timeline, state = published(events, CLOUD)
    for timer in plan_timers(timeline, state, CLOUD, paris, now):
        if timer.kind is TimerKind.SLA_WARNING and not urgent:
            assert paris.is_open(timer.fire_at)


@SETTINGS
@given(story=working_histories(ERP), position=st.integers(1, 6), share=shares)
def test_the_timeline_is_the_status_and_priority_each_event_left_and_when(
    story: tuple[list[Event], datetime], position: int, share: tuple[float, float]
) -> None:
    events, now = story
    paused = with_pause(events, now, "waiting_customer", position, share)
    timeline, state = published(paused, ERP)
    status, priority = ERP.initial_status, paused[0].priority  # type: ignore[attr-defined]
    assert [step.version for step in timeline.steps] == list(range(1, len(paused) + 1))
    for event, step in zip(paused, timeline.steps, strict=True):
        if isinstance(event, StatusChanged):
            status = event.to_status
        elif isinstance(event, PriorityChanged):
            priority = event.to_priority
        assert (step.at, step.status, step.priority) == (
            as_utc(event.occurred_at),
            status,
            priority,
        )
    assert (state.version, state.status, state.priority) == (len(paused), status, priority)
