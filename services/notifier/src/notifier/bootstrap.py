"""Composition root of the notifier: consumers of ticket events, SLA warnings and breaches and
automatic-reply requests (started once the directory's feed has caught up: who is told, in which
language, comes from it), the loop that tells the SLA events set aside until their request's
state came (woken after each batch of either topic), the SMTP sender loop (its relay
connection closed at shutdown), the outbox relay of failed deliveries to `ticket-commands`, its
own readiness check (no message pending too long), and the messages' metrics by desk (on the
process's registry: `notifier.adapters.metrics`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from desk_contracts.topics import AUTOMATIC_REPLIES, SLA_EVENTS, TICKET_COMMANDS, TICKET_EVENTS
from desk_eventstore.migrate import migrations_in
from desk_eventstore.records import RecordedEvent
from desk_platform.directory_feed import follow_directory
from desk_platform.runtime import ServiceRuntime
from desk_platform.settings import Settings
from desk_policies.directory import DirectorySource
from desk_policies.loader import load_policies
from notifier.adapters.kafka import (
    events_together,
    on_automatic_reply,
    on_sla_event,
    on_ticket_event,
)
from notifier.adapters.metrics import NotificationMetrics
from notifier.adapters.templates import Templates
from notifier.application.backlog import pending_messages_probe
from notifier.application.delivery import Relay, Sender
from notifier.application.meter import UNMETERED, NotificationMeter
from notifier.application.notify import Notifier
from notifier.application.sla_events import release_waiting, waiting_now
from notifier.domain.rules import unstaffed_roles

log = structlog.get_logger(__name__)
TICK_SECONDS = 0.5
RELEASE_SECONDS = 5.0  # SLA events set aside are looked at again (and after every batch)


def now() -> datetime:
    return datetime.now(UTC)


def topic_for(event: RecordedEvent) -> str:
    """The notifier's store holds only `DeliveryFailed` commands, for workflow."""
    return TICKET_COMMANDS


def notifier_from(
    settings: Settings, directory: DirectorySource, meter: NotificationMeter = UNMETERED
) -> Notifier:
    """The notifier's recording, with the desks of the settings and `directory`, telling
    `meter` of each message rendered."""
    policies = load_policies(*([Path(settings.policies_dir)] if settings.policies_dir else []))
    return Notifier(
        policies=policies,
        directory=directory,
        templates=Templates(),
        mail_domain=settings.mail_from.rpartition("@")[2] or "desk.local",
        portal_url=settings.portal_url,
        survey_secret=settings.survey_secret,
        survey_valid_days=settings.survey_valid_days,
        meter=meter,
    )


async def build(settings: Settings) -> tuple[ServiceRuntime, Any]:
    runtime = ServiceRuntime(
        "notifier",
        settings,
        migrations=migrations_in("notifier", resources.files("notifier") / "migrations"),
        topic_for=topic_for,
    )
    directory = follow_directory(runtime)
    meter = NotificationMetrics(runtime.readiness.metrics.registry)
    notifier = notifier_from(settings, lambda: directory.current, meter)
    for desk in notifier.policies:  # every desk's counters shown from the start, at 0
        meter.show(desk)

    async def directory_read() -> None:
        await directory.wait_caught_up()
        for policy in notifier.policies.values():
            if missing := unstaffed_roles(policy, notifier.directory_now()):
                log.warning("notification_roles_without_people", desk=policy.id, roles=missing)

    runtime.consume_after.append(directory_read)
    recorded = asyncio.Event()  # deliveries were recorded: send them now, not at the next tick
    states = asyncio.Event()  # states kept or SLA events set aside: tell those that may go

    def applied() -> None:
        recorded.set()
        states.set()

    runtime.subscribe(
        TICKET_EVENTS,
        on_ticket_event(notifier),
        applied=applied,
        together=events_together(notifier),
    )
    runtime.subscribe(SLA_EVENTS, on_sla_event(notifier, now), applied=applied)
    runtime.subscribe(AUTOMATIC_REPLIES, on_automatic_reply(notifier), applied=recorded.set)
    pool = await runtime.start_store()
    relay = Relay(settings.smtp_host, settings.smtp_port, settings.mail_from)
    sender = Sender(pool, relay, lanes=settings.smtp_connections, meter=meter)

    runtime.repeat("deliver", lambda: sender.send_pending(now()), TICK_SECONDS, wake=recorded)

    async def release() -> int:
        """Tell the SLA events set aside whose request's state came; show what still waits."""
        released = await release_waiting(pool, notifier, now(), recorded.set)
        meter.sla_events_waiting(*await waiting_now(pool))
        return released

    runtime.repeat("release-sla-events", release, RELEASE_SECONDS, wake=states)

    async def close_relay_connection(stop: asyncio.Event) -> None:
        """At shutdown, QUIT the relay connection the sender keeps between batches."""
        await stop.wait()
        await sender.close()

    runtime.every(close_relay_connection)
    runtime.readiness.add(
        "deliveries",
        pending_messages_probe(
            pool, settings.ready_pending_mail_seconds, runtime.readiness.metrics
        ),
    )
    return runtime, None
