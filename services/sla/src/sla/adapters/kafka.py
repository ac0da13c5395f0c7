"""Each ticket event's published request state is kept by sla, then the ticket's timers re-armed.

The state travels with the event (`desk_contracts.state`): an event without a valid one, or
with the state of another ticket, can never be applied (a poison message, dead-lettered).
Events arriving together are applied as one set (`events_together`): every state kept, then
each ticket's timers re-armed once from its latest, with a few statements for all; a set that
cannot be goes one by one. The timers armed are told to the `TimerMeter` given.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_platform.consumer import Handler, PoisonMessage, Together, published_state
from sla.application.timers import (
    UNMETERED,
    Desks,
    TimerMeter,
    arm,
    arm_all,
    record,
    record_all,
)


def on_ticket_event(
    desks: Desks, clock: Callable[[], datetime], meter: TimerMeter = UNMETERED
) -> Handler:
    """The handler of `ticket-events`: keep the published state, re-arm the ticket's timers."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        state = published_state(envelope, event)
        try:
            await record(conn, state)
            await arm(conn, desks, state.ticket_id, clock(), meter)
        except KeyError as error:
            raise PoisonMessage(f"unknown desk or calendar {error}") from error
        except ValueError as error:  # a status its desk lacks
            raise PoisonMessage(f"unreadable request state: {error}") from error

    return handle


def events_together(
    desks: Desks, clock: Callable[[], datetime], meter: TimerMeter = UNMETERED
) -> Together:
    """Ticket events applied as one set: as one by one, but each ticket armed once, from the
    latest state (what arming after each of its events leaves in the end)."""

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        states = [published_state(envelope, event) for envelope, event in records]
        await record_all(conn, states)
        tickets = list(dict.fromkeys(s.ticket_id for s in states))
        await arm_all(conn, desks, tickets, clock(), meter)

    return Together(lambda envelope, event: True, apply)
