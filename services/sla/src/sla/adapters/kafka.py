"""Every ticket event is kept in the sla service's history, then the ticket's timers re-armed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_platform.consumer import Handler, PoisonMessage
from sla.application.timers import Desks, arm, record


def on_ticket_event(desks: Desks, clock: Callable[[], datetime]) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        try:
            version = int(envelope.extensions.get("streamversion", ""))
        except ValueError:
            raise PoisonMessage("ticket event without a stream version") from None
        await record(conn, envelope, version)
        try:
            await arm(conn, desks, envelope.subject, clock())
        except KeyError as error:
            raise PoisonMessage(f"unknown desk or calendar {error}") from error

    return handle
