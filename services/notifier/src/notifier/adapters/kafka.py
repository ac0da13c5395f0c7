"""The notifier's Kafka handler: every ticket event may cause messages, recorded for sending."""

from __future__ import annotations

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_platform.consumer import Handler, PoisonMessage
from desk_policies.model import DeskPolicy
from notifier.application.notify import record_notifications


def on_ticket_event(policies: dict[str, DeskPolicy], mail_domain: str) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        try:
            await record_notifications(conn, envelope, event, policies, mail_domain)
        except KeyError as error:
            raise PoisonMessage(f"unknown desk {error}") from error

    return handle
