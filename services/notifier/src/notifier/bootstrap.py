"""Composition root of the notifier: ticket-event consumer and the SMTP sender loop."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from desk_contracts.topics import TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.loader import load_policies
from notifier.adapters.kafka import on_ticket_event
from notifier.application.notify import send_pending

log = structlog.get_logger(__name__)
TICK_SECONDS = 0.5


def now() -> datetime:
    return datetime.now(UTC)


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    runtime = ServiceRuntime(
        "notifier",
        settings,
        migrations=migrations_in("notifier", resources.files("notifier") / "migrations"),
    )
    mail_domain = settings.mail_from.rpartition("@")[2] or "desk.local"
    runtime.subscribe(TICKET_EVENTS, on_ticket_event(policies, mail_domain))
    pool = await runtime.start_store()

    async def deliver(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                while await send_pending(
                    pool, settings.smtp_host, settings.smtp_port, settings.mail_from, now()
                ):
                    pass
            except Exception:
                log.exception("delivery_loop_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_SECONDS)

    runtime.every(deliver)
    return runtime, None
