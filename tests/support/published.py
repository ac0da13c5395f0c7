"""Test helper for the readers of `ticket-events` (sla, notifier): a request's story told as
events, published as workflow publishes it.

Each event comes with the request's state after it, folded by the one fold
(`desk_policies.requests.evolve`, `published`), so a reader's test never folds events its own way.
`published_envelopes` gives the records a reader consumes: stored with the state in their
metadata as workflow stores them, sent by the relay's mapping and read back from Kafka's bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.state import STATE_METADATA, RequestState
from desk_eventstore.records import RecordedEvent
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve, published

WORKFLOW = "/desk/workflow"


def published_states(events: Sequence[Event], policy: DeskPolicy) -> list[RequestState]:
    """The state workflow publishes with each of `events`: a request's stream from its
    `TicketCreated` on, under `policy`."""
    state = Ticket.blank(policy, events[0].ticket_id)
    states = []
    for event in events:
        state = evolve(state, event)
        states.append(published(state))
    return states


def published_envelopes(events: Sequence[Event], policy: DeskPolicy) -> list[Envelope]:
    """`events` as the records of `ticket-events` a reader receives, each with its stream
    version and the request's state after it."""
    envelopes = []
    for event, state in zip(events, published_states(events, policy), strict=True):
        stored = RecordedEvent(
            global_position=state.version,
            stream_id=event.ticket_id,
            stream_version=state.version,
            event_id=uuid.uuid4(),
            event_type=event.event_type,
            schema_version=event.schema_version,
            payload=event.model_dump(mode="json"),
            metadata={
                "correlationid": event.ticket_id,
                STATE_METADATA: state.model_dump(mode="json"),
            },
            recorded_at=event.occurred_at,
        )
        envelopes.append(Envelope.from_kafka(*stored.to_envelope(WORKFLOW).to_kafka()))
    return envelopes
