"""Test helper: a request's events as workflow publishes them on `ticket-events`, each with the
request's state after it, folded by the one fold (`desk_policies.requests`). Readers' tests
feed these to their consumers instead of folding events their own way."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.state import RequestState
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve, published

EVENT_IDS = uuid.UUID("0b5e7c1a-3f2d-4e8b-9a6c-5d4e3f2a1b0c")  # namespace of the event ids


def published_states(events: Sequence[Event], policy: DeskPolicy) -> list[RequestState]:
    """The state after each of `events` (one request's, from its `TicketCreated`)."""
    state = Ticket.blank(policy, events[0].ticket_id)
    states = []
    for event in events:
        state = evolve(state, event)
        states.append(published(state))
    return states


def published_envelopes(events: Sequence[Event], policy: DeskPolicy) -> list[Envelope]:
    """`events` as records of `ticket-events`: each with the state after it. An event's id
    depends on its request and version only, so publishing a longer history again gives the
    earlier events the same ids (a consumer takes them as duplicates)."""
    return [
        Envelope(
            id=str(uuid.uuid5(EVENT_IDS, f"{event.ticket_id}/{state.version}")),
            type=event.event_type,
            source="/desk/workflow",
            subject=event.ticket_id,
            time=event.occurred_at,
            data=event.model_dump(mode="json"),
            schema_version=event.schema_version,
            extensions={"streamversion": str(state.version)},
            request_state=state.model_dump(mode="json"),
        )
        for event, state in zip(events, published_states(events, policy), strict=True)
    ]
