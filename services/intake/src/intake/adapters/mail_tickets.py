"""The requests the gateway knows, to thread a reply (key, ticket id, the Message-ID that opened
it) and to check who may answer: each as workflow last published it on `ticket-events` (table
`request_states`, the latest state per request; no event is folded here), else as intake itself
created it (its `TicketCreated` in intake's store), so a reply to a request just created is
taken before workflow has published it. Ticket events arriving together are kept as one set
(`events_together`): each request's newest state, with one statement for all."""

from __future__ import annotations

import json
from collections.abc import Mapping

import asyncpg

from desk_contracts.base import Event, event_from_data
from desk_contracts.envelope import Envelope
from desk_contracts.state import RequestState
from desk_contracts.tickets import TicketCreated
from desk_platform.consumer import Handler, Together, published_state
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve, published
from intake.domain.mail import References


def on_ticket_event() -> Handler:
    """Consumer of `ticket-events`: keep the state published with each record, when newer than
    the one kept (a record without a valid state is a poison message)."""

    async def handle(conn: asyncpg.Connection, envelope: Envelope, event: Event) -> None:
        await _keep(conn, [published_state(envelope, event)])

    return handle


def events_together() -> Together:
    """Ticket events kept as one set: each request's newest state among them, what keeping them
    one by one leaves in the end (an invalid state raises: the set then goes one by one)."""

    async def apply(conn: asyncpg.Connection, records: list[tuple[Envelope, Event]]) -> None:
        newest: dict[str, RequestState] = {}
        for envelope, event in records:
            state = published_state(envelope, event)
            kept = newest.get(state.ticket_id)
            if kept is None or kept.version < state.version:
                newest[state.ticket_id] = state
        await _keep(conn, [newest[ticket_id] for ticket_id in sorted(newest)])  # locks in order

    return Together(lambda envelope, event: True, apply)


async def _keep(conn: asyncpg.Connection, states: list[RequestState]) -> None:
    """Upsert `states` (one a request) in one statement, each only over an older one."""
    await conn.execute(
        """INSERT INTO request_states (ticket_id, key, source_message_id, version, state)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::jsonb[])
           ON CONFLICT (ticket_id) DO UPDATE SET version = excluded.version,
               state = excluded.state
           WHERE request_states.version < excluded.version""",
        [s.ticket_id for s in states],
        [s.key for s in states],
        [s.source_message_id.lower() if s.source_message_id else None for s in states],
        [s.version for s in states],
        [s.model_dump_json() for s in states],
    )


async def tickets_for(
    conn: asyncpg.Connection, refs: References, policies: Mapping[str, DeskPolicy]
) -> list[RequestState]:
    """The requests a message may refer to (by key, by our Message-ID, by the opening mail)."""
    if not refs:
        return []
    wanted = (list(refs.keys), list(refs.ticket_ids), list(refs.message_ids))
    rows = await conn.fetch(
        """SELECT state FROM request_states
           WHERE key = ANY($1::text[]) OR ticket_id = ANY($2::text[])
              OR source_message_id = ANY($3::text[])""",
        *wanted,
    )
    known = {s.ticket_id: s for s in (RequestState.model_validate_json(r["state"]) for r in rows)}
    for created in await _created(conn, wanted):
        policy = policies.get(created.policy_id)
        if created.ticket_id not in known and policy is not None:
            known[created.ticket_id] = _opened(created, policy)
    return list(known.values())


async def _created(
    conn: asyncpg.Connection, wanted: tuple[list[str], list[str], list[str]]
) -> list[TicketCreated]:
    """The requests of `wanted` (keys, ticket ids, opening Message-IDs) intake created."""
    rows = await conn.fetch(
        """SELECT schema_version, payload FROM events
           WHERE event_type = 'TicketCreated'
             AND (payload->>'key' = ANY($1::text[]) OR stream_id = ANY($2::text[])
                  OR lower(payload->>'source_message_id') = ANY($3::text[]))""",
        *wanted,
    )
    events = [
        event_from_data("TicketCreated", row["schema_version"], json.loads(row["payload"]))
        for row in rows
    ]
    return [event for event in events if isinstance(event, TicketCreated)]


def _opened(created: TicketCreated, policy: DeskPolicy) -> RequestState:
    """The request as workflow publishes it with its creation (the one fold's first state)."""
    return published(evolve(Ticket.blank(policy, created.ticket_id), created))
