"""Workflow's Kafka handlers: intake's `TicketCreated` opens a stream; the sla service's
reminder and auto-close commands become stale-safe system commands."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.sla import AutoCloseDue, ReminderDue
from desk_contracts.tickets import TicketCreated
from desk_platform.consumer import Handler, PoisonMessage
from desk_policies.model import DeskPolicy
from workflow.application.tickets import UnknownPolicy, UnknownTicket, execute, load, open_stream
from workflow.domain.commands import AutoClose, SendReminder
from workflow.domain.rules import Rejection

log = structlog.get_logger(__name__)


def on_ticket_event(policies: dict[str, DeskPolicy]) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, TicketCreated) or envelope.source == "/desk/workflow":
            return
        try:
            await open_stream(conn, policies, event, envelope.id, envelope.correlation_id)
        except UnknownPolicy as error:
            raise PoisonMessage(str(error)) from error

    return handle


def on_command(policies: dict[str, DeskPolicy], clock: Callable[[], datetime]) -> Handler:
    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        if isinstance(event, ReminderDue):
            command: SendReminder | AutoClose = SendReminder(
                armed_version=event.armed_version, days_waiting=event.days_waiting
            )
        elif isinstance(event, AutoCloseDue):
            command = AutoClose(armed_version=event.armed_version)
        else:
            raise PoisonMessage(f"{envelope.type} is not a command workflow executes")
        try:
            loaded = await load(conn, policies, event.ticket_id)
        except (UnknownTicket, UnknownPolicy) as error:
            raise PoisonMessage(str(error)) from error
        # deterministic ids: the same command delivered twice cannot make two reminders
        ids = [uuid.uuid5(uuid.UUID(envelope.id), str(n)) for n in range(4)]
        outcome = await execute(
            conn,
            loaded,
            command,
            clock(),
            correlation_id=envelope.correlation_id,
            causation_id=envelope.id,
            event_ids=ids,
        )
        if isinstance(outcome, Rejection):
            log.info("automation_refused", command=envelope.type, reason=outcome.reason)
        elif not outcome.events:
            log.info(
                "automation_stale",
                command=envelope.type,
                armed=event.armed_version,
                version=loaded.state.version,
            )

    return handle
