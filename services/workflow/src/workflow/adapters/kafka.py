"""Workflow's Kafka handler of its input topic (`ticket-commands`): intake's `TicketCreated` opens
a stream (published again, with the request's state, on `ticket-events`); forwarded commands (the
sla service's stale-safe reminders and auto-close, requesters' mail replies and survey answers,
the notifier's failed deliveries) are decided like any other command. A mail reply to a request
whose stream is full is refused like a command the rules refuse: logged with the reason, not
retried. (The mail gateway answers 552 to a reply once the request's stream in intake's own store
is full.)

Each command comes from the one part of the system that may send it, named by its CloudEvents
source (`SENDERS`: the e-mail gateway and the survey are intake's, reminders and auto-close
sla's, failed deliveries the notifier's); any other sender's is a poison message, set aside
with the reason. (The source is what the producer says: Kafka's own authentication and ACLs,
which an operator sets, make it a proof.)

Creations arriving together open their streams as one set (`creations_together`): their appends
and read-model rows with a few statements for all, as one by one would."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.requests import CommentReceived, DeliveryFailed, SurveySubmitted
from desk_contracts.sla import AutoCloseDue, ReminderDue, TimerFired
from desk_contracts.tickets import TicketCreated
from desk_eventstore.store import StreamFull
from desk_platform.consumer import Handler, PoisonMessage, Together
from desk_platform.testclocks import RequestTime, TestClocks
from desk_policies.model import DeskPolicy
from workflow.application.tickets import (
    UnknownPolicy,
    UnknownTicket,
    execute,
    load,
    open_stream,
    open_streams,
)
from workflow.domain.commands import (
    Actor,
    AddComment,
    AnswerSurvey,
    AutoClose,
    Command,
    RecordDeliveryFailure,
    SendReminder,
)
from workflow.domain.rules import Rejection

log = structlog.get_logger(__name__)


def command_for(event: Event) -> Command | None:
    """The workflow command a forwarded command event asks for (None: not ours)."""
    if isinstance(event, ReminderDue):
        return SendReminder(armed_version=event.armed_version, days_waiting=event.days_waiting)
    if isinstance(event, AutoCloseDue):
        return AutoClose(armed_version=event.armed_version)
    if isinstance(event, CommentReceived):
        author = Actor(event.author_id, event.author_role, event.organisation_id)
        return AddComment(
            actor=author,
            body=event.body,
            public=True,
            channel=event.channel,
            source_message_id=event.source_message_id,
        )
    if isinstance(event, SurveySubmitted):
        return AnswerSurvey(
            actor=Actor(event.respondent_id, "requester"),
            rating=event.rating,
            comment=event.comment,
        )
    if isinstance(event, DeliveryFailed):
        return RecordDeliveryFailure(
            recipient=event.recipient,
            message_id=event.message_id,
            notified_event_id=event.notified_event_id,
            error=event.error,
        )
    return None


# the service identities that may put each type on workflow's input (their CloudEvents source)
SENDERS: dict[type[Event], frozenset[str]] = {
    TicketCreated: frozenset({"/desk/intake"}),
    CommentReceived: frozenset({"/desk/intake"}),
    SurveySubmitted: frozenset({"/desk/intake"}),
    ReminderDue: frozenset({"/desk/sla"}),
    AutoCloseDue: frozenset({"/desk/sla"}),
    DeliveryFailed: frozenset({"/desk/notifier"}),
}


def check_sender(envelope: Envelope, event: Event) -> None:
    """PoisonMessage unless `envelope` comes from a service that may send `event`."""
    senders = SENDERS.get(type(event), frozenset())
    if envelope.source not in senders:
        allowed = ", ".join(sorted(senders)) or "no one"
        raise PoisonMessage(
            f"{envelope.type} from {envelope.source[:80]!r}: only {allowed} may send it"
        )


def on_command(
    policies: dict[str, DeskPolicy],
    clock: Callable[[], datetime],
    test_clocks: TestClocks | None = None,
) -> Handler:
    """The handler of workflow's input: new requests opened, commands executed at the time it is
    for their request (`test_clocks`: the clocks requests may live on; None: not enabled)."""
    times = RequestTime(clock, test_clocks)

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        check_sender(envelope, event)
        if isinstance(event, TicketCreated):
            try:
                await open_stream(conn, policies, event, envelope.id, envelope.correlation_id)
            except UnknownPolicy as error:
                raise PoisonMessage(str(error)) from error
            return
        command = command_for(event)
        if command is None:
            raise PoisonMessage(f"{envelope.type} is not a command workflow executes")
        try:
            loaded = await load(conn, policies, event.ticket_id)
        except UnknownPolicy as error:
            raise PoisonMessage(str(error)) from error
        except UnknownTicket as error:  # its creation comes first on this topic: none came
            raise PoisonMessage(str(error)) from error
        test_clock = loaded.state.test_clock
        if test_clocks is not None and test_clock is not None and isinstance(event, TimerFired):
            test_clocks.reached(test_clock, event.due_at)  # fired when its clock got there
        try:
            outcome = await execute(
                conn,
                loaded,
                command,
                times.now(test_clock),
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
                id_seed=uuid.uuid5(uuid.NAMESPACE_URL, envelope.id),
            )
        except StreamFull as error:  # refused before anything was written
            log.warning("forwarded_command_refused", command=envelope.type, reason=error.reason)
            return
        if isinstance(outcome, Rejection):
            log.warning("forwarded_command_refused", command=envelope.type, reason=outcome.reason)
        elif not outcome.events:
            armed = getattr(event, "armed_version", None)
            log.info(
                "automation_stale", command=envelope.type, armed=armed, version=loaded.state.version
            )

    return handle


def creations_together(policies: dict[str, DeskPolicy]) -> Together:
    """Intake's creations, of desks workflow knows, opened as one set (`open_streams`)."""

    def takes(envelope: Envelope, event: Event) -> bool:
        return (
            isinstance(event, TicketCreated)
            and envelope.source in SENDERS[TicketCreated]
            and event.policy_id in policies
        )

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        opened = []
        for envelope, event in records:
            assert isinstance(event, TicketCreated)
            opened.append((event, envelope.id, envelope.correlation_id))
        await open_streams(conn, policies, opened)

    return Together(takes, apply)
