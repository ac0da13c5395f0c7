"""The notifier's Kafka handlers: ticket events may cause messages; the inbound gateway's
requests for automatic answers become answers. Both are recorded for sending, never sent here.
A ticket event without the request's state (or with another request's) is a poison message.
Ticket events arriving together are recorded as one set (`events_together`)."""

from __future__ import annotations

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.mail import AutomaticReplyRequested
from desk_platform.consumer import Handler, PoisonMessage, Together, published_state
from notifier.application.notify import (
    Notifier,
    record_all_notifications,
    record_automatic_reply,
    record_notifications,
)


def on_ticket_event(notifier: Notifier) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        ticket = published_state(envelope, event)
        try:
            await record_notifications(conn, envelope, event, ticket, notifier)
        except KeyError as error:
            raise PoisonMessage(f"unknown desk {error}") from error

    return handle


def on_automatic_reply(notifier: Notifier) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, AutomaticReplyRequested):
            raise PoisonMessage(f"{envelope.type} is not an automatic reply request")
        await record_automatic_reply(conn, envelope, event, notifier)

    return handle


def events_together(notifier: Notifier) -> Together:
    """Ticket events recorded as one set (`record_all_notifications`), as one by one would."""

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        published = [(e, event, published_state(e, event)) for e, event in records]
        await record_all_notifications(conn, published, notifier)

    return Together(lambda envelope, event: True, apply)
