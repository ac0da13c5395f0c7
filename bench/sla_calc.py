"""Benchmark (not a test): SLA computation per ticket of 50 events.

One computation = `read_clocks` + `plan_timers` (both clocks, warnings, breaches, reminders,
auto-close) over the ticket's whole timeline and latest state (the states workflow publishes
with its events, folded here once by the one fold), as the sla service does after every event
of a ticket.

    uv run python bench/sla_calc.py [--seconds 3]

Cases: each seed desk on its business calendar with the per-day memo warm (a long-running
service), the same with a cold memo (a fresh `BusinessTime` per computation), and the
24/7 calendar. Prints computations per second and the time per computation.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from desk_contracts.base import Event
from desk_contracts.tickets import (
    Channel,
    CommentAdded,
    PriorityChanged,
    StatusChanged,
    TicketCreated,
)
from desk_policies import DeskPolicy, shipped_policy
from desk_policies.calendars import shipped_calendars
from desk_policies.requests import Ticket, evolve, published
from sla.domain.business_time import BusinessTime
from sla.domain.clocks import read_clocks
from sla.domain.timeline import Timeline
from sla.domain.timers import plan_timers

EVENTS = 50
CALENDARS = shipped_calendars()
# A working cycle per desk: the statuses a ticket goes through again and again.
CYCLES = {
    "erp-vendor": ["qualified", "in_progress", "waiting_triage", "in_progress", "waiting_customer"],
    "cloud-partner": ["in_progress", "waiting_third_party", "in_progress", "waiting_customer"],
    "saas-desk": ["assigned", "answered", "assigned"],
}


def history(policy: DeskPolicy, seed: int = 7) -> tuple[list[Event], datetime]:
    """50 events over about three weeks: status changes, comments and priority changes."""
    rng = random.Random(seed)
    at = datetime(2026, 3, 2, 8, 30, tzinfo=UTC)
    priority = "medium"
    events: list[Event] = [
        TicketCreated(
            ticket_id="T-1",
            occurred_at=at,
            key="SPT-1",
            policy_id=policy.id,
            request_type=policy.request_types[0].id,
            priority=priority,
            subject="bench",
            description="bench",
            organisation_id="acme",
            requester_id="alice@acme.test",
            created_by="alice@acme.test",
            channel=Channel.PORTAL,
        )
    ]
    status, cycle, step = policy.initial_status, CYCLES[policy.id], 0
    while len(events) < EVENTS:
        at += timedelta(minutes=rng.randint(20, 600))
        roll = rng.random()
        if roll < 0.5:
            target = cycle[step % len(cycle)]
            step += 1
            events.append(
                StatusChanged(
                    ticket_id="T-1",
                    occurred_at=at,
                    actor_id="agent",
                    actor_role="agent",
                    from_status=status,
                    to_status=target,
                )
            )
            status = target
        elif roll < 0.6:
            new = rng.choice([p.id for p in policy.priorities])
            events.append(
                PriorityChanged(
                    ticket_id="T-1",
                    occurred_at=at,
                    actor_id="lead",
                    actor_role="team_lead",
                    from_priority=priority,
                    to_priority=new,
                )
            )
            priority = new
        else:
            events.append(
                CommentAdded(
                    ticket_id="T-1",
                    occurred_at=at,
                    actor_id="agent",
                    actor_role="agent",
                    body="...",
                    public=True,
                )
            )
    return events, at + timedelta(hours=1)


def measure(compute: Callable[[], object], seconds: float) -> tuple[int, float]:
    compute()  # warm-up
    runs, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(20):
            compute()
        runs += 20
    return runs, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per case")
    args = parser.parse_args()
    print(f"SLA computation per ticket of {EVENTS} events (read_clocks + plan_timers)")
    print(f"python {sys.version.split()[0]} on {platform.machine()}, {args.seconds:.1f} s per case")
    print(f"{'case':<44} {'computations/s':>15} {'µs each':>10}")
    for desk in ("erp-vendor", "cloud-partner", "saas-desk"):
        for name, compute in cases(shipped_policy(desk)):
            runs, elapsed = measure(compute, args.seconds)
            print(f"{name:<44} {runs / elapsed:>15,.0f} {elapsed / runs * 1e6:>10,.0f}")


def cases(policy: DeskPolicy) -> list[tuple[str, Callable[[], object]]]:
    """The three cases of one desk: business calendar warm and cold, then 24/7."""
    events, now = history(policy)
    assert len(events) == EVENTS
    request = Ticket.blank(policy, events[0].ticket_id)
    states = []
    for event in events:
        request = evolve(request, event)
        states.append(published(request))
    timeline, state = Timeline.of(states), states[-1]
    calendar_id = policy.sla.calendar
    warm = BusinessTime(CALENDARS[calendar_id])
    always = BusinessTime(CALENDARS["always"])

    def on(calendar: BusinessTime) -> None:
        clocks = read_clocks(timeline, state, policy, calendar, now)
        plan_timers(timeline, state, policy, calendar, now, clocks=clocks)

    return [
        (f"{policy.id} / {calendar_id} (warm)", lambda: on(warm)),
        (f"{policy.id} / {calendar_id} (cold)", lambda: on(BusinessTime(CALENDARS[calendar_id]))),
        (f"{policy.id} / always (24/7)", lambda: on(always)),
    ]


if __name__ == "__main__":
    main()
