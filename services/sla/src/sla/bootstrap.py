"""Composition root of the sla service: request-state consumer, timer loop (which also moves
the test clocks, where `TEST_CLOCKS` enables them), relay, the verifier of identity tokens
(`IDENTITY_KEYS`, required), HTTP API, the timers' metrics (on the process's registry:
`sla.adapters.metrics`); at start, the board rows older than the queues' columns are
completed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from desk_contracts.testclocks import TestClockChanged
from desk_contracts.topics import SLA_EVENTS, TEST_CLOCKS, TICKET_COMMANDS, TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_eventstore.records import RecordedEvent
from desk_platform.identity import Verifier, required_identity_keys
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import events_together, on_ticket_event
from sla.adapters.metrics import TimerMetrics
from sla.application.testclocks import step_clocks
from sla.application.timers import (
    FIRE_BATCH,
    UNMETERED,
    Desks,
    TimerMeter,
    complete_board,
    due_timers,
    fire_due,
    next_due,
)

log = structlog.get_logger(__name__)
COMMANDS = {"ReminderDue", "AutoCloseDue"}
TICK_SECONDS = 1.0
# the shortest rest after a pass that fired timers: at 1,000 due a second, batches of about
# FIRE_BATCH, each timer at most this much later for it
GATHER_SECONDS = 0.1


def now() -> datetime:
    return datetime.now(UTC)


def fire_timers(
    runtime: ServiceRuntime,
    pool: asyncpg.Pool,
    desks: Desks,
    clock: Callable[[], datetime],
    meter: TimerMeter = UNMETERED,
    *,
    test_clocks: bool = False,
) -> asyncio.Event:
    """The timer loop: due timers fired (`fire_due`), at once again while batches come back
    full (a backlog), else a rest until the next timer falls due, at least `GATHER_SECONDS`
    after a pass that fired some (so that timers falling due all the time are fired by batches)
    and at most `TICK_SECONDS` (a timer put back by another replica is seen then). Each pass
    first tells `meter` the timers due; with `test_clocks`, it first moves the advancing test
    clocks a step (`step_clocks`: at once again while one moves without waiting). Returns the
    event that ends the rest at once: set it when timers were armed."""
    alarm = asyncio.Event()
    ringing: list[asyncio.TimerHandle] = []

    async def fire() -> int:
        moved = await step_clocks(pool, desks, clock()) if test_clocks else 0
        meter.due(await due_timers(pool, clock()))
        handled = await fire_due(pool, desks, clock(), meter=meter, clock=clock)
        if handled >= FIRE_BATCH or moved:
            return handled + moved  # the runtime's loop goes on at once
        due = await next_due(pool, clock())
        for handle in ringing:
            handle.cancel()
        ringing.clear()
        if due is not None:
            wait = max((due - clock()).total_seconds(), GATHER_SECONDS if handled else 0)
            if wait < TICK_SECONDS:
                ringing.append(asyncio.get_running_loop().call_later(wait, alarm.set))
        return 0  # rest until the alarm

    runtime.repeat("fire_timers", fire, TICK_SECONDS, wake=alarm)
    return alarm


def topic_for(event: RecordedEvent) -> str:
    if event.event_type == TestClockChanged.event_type:
        return TEST_CLOCKS
    return TICKET_COMMANDS if event.event_type in COMMANDS else SLA_EVENTS


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    verifier = Verifier(required_identity_keys(settings, "sla"), audience="sla")
    calendars = shipped_calendars()
    extra = [Path(settings.policies_dir)] if settings.policies_dir else []
    desks = Desks(load_policies(*extra, known_calendars=set(calendars)), calendars)
    runtime = ServiceRuntime(
        "sla",
        settings,
        migrations=migrations_in("sla", resources.files("sla") / "migrations"),
        topic_for=topic_for,
    )
    pool = await runtime.start_store()
    completed = await complete_board(pool, desks, now())  # rows written before migration 0005
    if completed:
        log.info("board_completed", rows=completed)

    meter = TimerMetrics(runtime.readiness.metrics.registry)
    armed = fire_timers(runtime, pool, desks, now, meter, test_clocks=settings.test_clocks)
    runtime.subscribe(
        TICKET_EVENTS,
        on_ticket_event(desks, now, meter),
        applied=armed.set,
        together=events_together(desks, now, meter),
    )
    app = create_app(pool, desks, now, verifier=verifier, test_clocks=settings.test_clocks)
    return runtime, app
