"""The notifier's Kafka handlers: ticket events may cause messages; SLA warnings and breaches
(`sla-events`) too; the inbound gateway's requests for automatic answers become answers. All are
recorded for sending, never sent here. A ticket event without the request's state (or with
another request's) is a poison message; the state it carries is kept (the latest per request),
for the SLA events, which carry none. Ticket events arriving together are recorded as one set
(`events_together`). An SLA event not from sla, or of a desk the notifier does not know, is a
poison message; one for a request whose state has not come yet is set aside until it does
(`application.sla_events`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.mail import AutomaticReplyRequested
from desk_contracts.sla import SlaBreached, SlaWarningReached
from desk_platform.consumer import Handler, PoisonMessage, Together, published_state
from notifier.application.notify import (
    Notifier,
    record_all_notifications,
    record_automatic_reply,
    record_notifications,
)
from notifier.application.request_states import keep_states
from notifier.application.sla_events import SLA_SOURCE, record_sla_event


def on_ticket_event(notifier: Notifier) -> Handler:
    """The handler of `ticket-events`: keep the published state, record the messages."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        ticket = published_state(envelope, event)
        try:
            await keep_states(conn, [ticket])
            await record_notifications(conn, envelope, event, ticket, notifier)
        except KeyError as error:
            raise PoisonMessage(f"unknown desk {error}") from error

    return handle


def on_sla_event(notifier: Notifier, clock: Callable[[], datetime]) -> Handler:
    """The handler of `sla-events`: a warning or breach is told (or set aside until its
    request's state is kept; a warning `clock` finds past its breach is dropped); other types
    published there tell nobody."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if envelope.source != SLA_SOURCE:
            raise PoisonMessage(f"{envelope.type} from {envelope.source[:80]!r}: only sla sends it")
        if not isinstance(event, SlaWarningReached | SlaBreached):
            return  # nothing the notifier tells
        try:
            await record_sla_event(conn, envelope, event, notifier, clock())
        except KeyError as error:
            raise PoisonMessage(f"unknown desk {error}") from error

    return handle


def on_automatic_reply(notifier: Notifier) -> Handler:
    """The handler of `automatic-replies`: each request for an answer is recorded once."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, AutomaticReplyRequested):
            raise PoisonMessage(f"{envelope.type} is not an automatic reply request")
        await record_automatic_reply(conn, envelope, event, notifier)

    return handle


def events_together(notifier: Notifier) -> Together:
    """Ticket events recorded as one set (`record_all_notifications`), as one by one would."""

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        published = [(e, event, published_state(e, event)) for e, event in records]
        await keep_states(conn, [ticket for _, _, ticket in published])
        await record_all_notifications(conn, published, notifier)

    return Together(lambda envelope, event: True, apply)
