"""Composition root of the sla service: request-state consumer, timer loop, relay, the verifier
of identity tokens (`IDENTITY_KEYS`, required), HTTP API; at start, the board rows older than
the queues' columns are completed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg
import structlog

from desk_contracts.topics import SLA_EVENTS, TICKET_COMMANDS, TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_eventstore.records import RecordedEvent
from desk_platform.identity import Verifier, required_identity_keys
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks, complete_board, fire_due

log = structlog.get_logger(__name__)
COMMANDS = {"ReminderDue", "AutoCloseDue"}
TICK_SECONDS = 1.0


def now() -> datetime:
    return datetime.now(UTC)


def fire_timers(
    runtime: ServiceRuntime, pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime]
) -> None:
    """The timer loop: due timers fired (`fire_due`) until none is, then again after a tick."""
    runtime.repeat("fire_timers", lambda: fire_due(pool, desks, clock()), TICK_SECONDS)


def topic_for(event: RecordedEvent) -> str:
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
    runtime.subscribe(TICKET_EVENTS, on_ticket_event(desks, now))
    pool = await runtime.start_store()
    completed = await complete_board(pool, desks, now())  # rows written before migration 0005
    if completed:
        log.info("board_completed", rows=completed)

    fire_timers(runtime, pool, desks, now)
    return runtime, create_app(pool, desks, now, verifier=verifier)
