"""Each ticket event's published request state is kept by sla, then the ticket's timers re-armed.

The state travels with the event (`desk_contracts.state`): an event without a valid one, or
with the state of another ticket, can never be applied (a poison message, dead-lettered).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import asyncpg

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.inputs import quoted
from desk_contracts.state import MissingState, RequestState, state_of
from desk_platform.consumer import Handler, PoisonMessage
from sla.application.timers import Desks, arm, record


def _state(envelope: Envelope) -> RequestState:
    try:
        state = state_of(envelope.request_state)
    except MissingState as error:
        raise PoisonMessage(str(error)) from None
    if state.ticket_id != envelope.subject:
        raise PoisonMessage(
            f"the request state is of ticket {quoted(state.ticket_id)}, "
            f"the event of {quoted(envelope.subject)}"
        )
    return state


def on_ticket_event(desks: Desks, clock: Callable[[], datetime]) -> Handler:
    """The handler of `ticket-events`: keep the published state, re-arm the ticket's timers."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        state = _state(envelope)
        try:
            await record(conn, state)
            await arm(conn, desks, state.ticket_id, clock())
        except KeyError as error:
            raise PoisonMessage(f"unknown desk or calendar {error}") from error
        except ValueError as error:  # a status its desk lacks, a time without a zone
            raise PoisonMessage(f"unreadable request state: {error}") from error

    return handle
