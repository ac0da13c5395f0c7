"""Realistic request histories for the benchmarks that need a full store (`rebuild.py`,
`growth.py`): `cloud-partner` requests, each a `TicketCreated` then 1 to 7 of the commands an
agent and the requester give (assign, start, comments, information requested and answered,
resolve, confirm), decided and folded by the real domain code (`decide`, `evolve`), each event
with the request's state in its metadata as `execute` writes it.

One history per length (and subject) is made that way (a `Template`); the requests are copies
of them with their own ids and keys (and, for `growth.py`, their own organisation, requester and
agent: `Who`), interleaved in the log by blocks of `BLOCK` (event 1 of each, then event 2...)
and streamed to the server with COPY: the events table's rows (`log_rows`) and the rows of
workflow's read model that its projection would write for them (`ticket_rows`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from desk_contracts.base import Event
from desk_contracts.state import STATE_METADATA
from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore.records import NewEvent
from desk_eventstore.store import encoded
from desk_policies.loader import load_policies
from desk_policies.requests import Ticket, evolve, published
from workflow.application.tickets import VIEW_COLUMNS, search_texts, view_row
from workflow.domain.commands import (
    Actor,
    AddComment,
    Assign,
    Command,
    ConfirmResolution,
    RequestInformation,
    Resolve,
    StartWork,
)
from workflow.domain.decide import decide
from workflow.domain.rules import Rejection

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ORGANISATION = "acme"
REQUESTER = "anne@acme.example"
AGENT_ID = "paul@partner.example"
AGENT = Actor(id=AGENT_ID, role="agent")
ANNE = Actor(id=REQUESTER, role="requester", organisation_id=ORGANISATION)
COMMANDS: list[Command] = [
    Assign(actor=AGENT, assignee_id=AGENT_ID),
    StartWork(actor=AGENT),
    AddComment(actor=AGENT, body="Les journaux montrent des requêtes lentes", public=False),
    RequestInformation(actor=AGENT, comment="Quelle version de Jira utilisez-vous ?"),
    AddComment(actor=ANNE, body="Jira 9.12.4, hébergé chez nous", public=True),
    Resolve(actor=AGENT, resolution_code="done", comment="Index reconstruit, cache vidé"),
    ConfirmResolution(actor=ANNE),
]
SUBJECT = (
    "Jira est très lent depuis la mise à jour",
    "Depuis la mise à jour de samedi, chaque page met dix secondes à s'afficher.",
)
TEMPLATE_ID = str(uuid.UUID(int=0))
TEMPLATE_KEY = "SUP-99999999"
BLOCK = 500  # requests interleaved in the log
EVENT_COLUMNS = [
    "stream_id", "stream_version", "event_id", "event_type", "schema_version", "payload",
    "metadata", "recorded_at", "stream_bytes",
]  # fmt: skip


@dataclass(frozen=True)
class Who:
    """Whose request a copy is: its organisation, its requester and the agent who takes it."""

    organisation_id: str = ORGANISATION
    requester_id: str = REQUESTER
    agent_id: str = AGENT_ID


TEMPLATE_WHO = Who()


@dataclass(frozen=True)
class Template:
    """One history: its events (type, payload and metadata as JSON), the request's state after
    them and the values of its read-model row (`workflow.application.tickets.view_row`)."""

    events: list[tuple[str, str, str]]
    state: Ticket
    row: tuple[Any, ...]


@dataclass(frozen=True)
class Request:
    """One request of the log: a copy of `template` numbered `number` (its id and key), `who`'s,
    opened at `opened`."""

    number: int
    template: Template
    who: Who = TEMPLATE_WHO
    opened: datetime = NOW

    @property
    def ticket_id(self) -> str:
        return str(uuid.UUID(int=self.number + 1))

    @property
    def key(self) -> str:
        return f"SUP-{100_000 + self.number}"


def opening(
    ticket_id: str, key: str, at: datetime, subject: tuple[str, str] = SUBJECT
) -> TicketCreated:
    """The `TicketCreated` of one request, as intake writes it."""
    return TicketCreated(
        ticket_id=ticket_id,
        occurred_at=at,
        key=key,
        policy_id="cloud-partner",
        request_type="support",
        priority="high",
        subject=subject[0],
        description=subject[1],
        organisation_id=ORGANISATION,
        requester_id=REQUESTER,
        created_by=REQUESTER,
        channel=Channel.PORTAL,
    )


def history(length: int, subject: tuple[str, str] = SUBJECT) -> Template:
    """The template request after `length` commands, decided and folded by the domain code,
    each event with the state `execute` stores."""
    created = opening(TEMPLATE_ID, TEMPLATE_KEY, NOW, subject)
    state = evolve(Ticket.blank(POLICIES["cloud-partner"], TEMPLATE_ID), created)
    events: list[tuple[Event, Ticket]] = [(created, state)]
    for minutes, command in enumerate(COMMANDS[:length], 1):
        decision = decide(state, command, NOW + timedelta(minutes=minutes))
        if isinstance(decision, Rejection):
            raise AssertionError(f"{command}: {decision}")
        for event in decision:
            state = evolve(state, event)
            events.append((event, state))
    written = []
    for event, after in events:
        metadata = {
            "correlationid": TEMPLATE_ID,
            STATE_METADATA: published(after).model_dump(mode="json"),
        }
        payload, meta = encoded(NewEvent.from_event(event, metadata=metadata))
        written.append((event.event_type, payload, meta))
    texts = search_texts(event for event, _ in events[1:])
    row = view_row(state, NOW, description=created.description, texts=texts)
    return Template(written, state, row)


def templates() -> list[Template]:
    """One template per history length, 1 to 7 commands."""
    return [history(length) for length in range(1, len(COMMANDS) + 1)]


def requests_for(events: int) -> list[Request]:
    """Requests of the templates in turn, until about `events` events in all."""
    made = templates()
    chosen: list[Request] = []
    total = 0
    while total < events:
        template = made[len(chosen) % len(made)]
        chosen.append(Request(len(chosen), template))
        total += len(template.events)
    return chosen


def copied(text: str, request: Request) -> str:
    """`text` of the template made `request`'s: its id, key and people."""
    text = text.replace(TEMPLATE_ID, request.ticket_id).replace(TEMPLATE_KEY, request.key)
    who = request.who
    if who != TEMPLATE_WHO:  # the requester's address holds the organisation: replaced first
        text = text.replace(REQUESTER, who.requester_id).replace(AGENT_ID, who.agent_id)
        text = text.replace(f'"{ORGANISATION}"', f'"{who.organisation_id}"')
    return text


def log_rows(requests: Sequence[Request]) -> Iterator[tuple[Any, ...]]:
    """The rows of the events table (`EVENT_COLUMNS`), interleaved by block; each event is
    recorded a minute after the one before it in its stream."""
    for start in range(0, len(requests), BLOCK):
        block = requests[start : start + BLOCK]
        sizes = [0] * len(block)
        for version in range(1, max(len(r.template.events) for r in block) + 1):
            for slot, request in enumerate(block):
                if version > len(request.template.events):
                    continue
                event_type, payload, metadata = request.template.events[version - 1]
                payload, metadata = copied(payload, request), copied(metadata, request)
                sizes[slot] += len(payload.encode()) + len(metadata.encode())
                yield (
                    request.ticket_id,
                    version,
                    uuid.uuid4(),
                    event_type,
                    1,
                    payload,
                    metadata,
                    request.opened + timedelta(minutes=version - 1),
                    sizes[slot],
                )


# where the values that differ from copy to copy are in a read-model row (VIEW_COLUMNS)
_AT = {name: VIEW_COLUMNS.index(name) for name in VIEW_COLUMNS}


def ticket_row(request: Request) -> tuple[Any, ...]:
    """The read model's row of `request`, as `workflow.application.tickets.save_view` leaves it
    after its last event."""
    row = list(request.template.row)
    who = request.who
    state = request.template.state
    row[_AT["ticket_id"]] = request.ticket_id
    row[_AT["key"]] = request.key
    row[_AT["organisation_id"]] = who.organisation_id
    row[_AT["requester_id"]] = who.requester_id
    row[_AT["created_by"]] = who.requester_id
    row[_AT["involved"]] = [who.requester_id]
    if state.assignee_id:
        row[_AT["assignee_id"]] = who.agent_id
    row[_AT["created_at"]] = request.opened
    row[_AT["updated_at"]] = request.opened + timedelta(minutes=len(request.template.events) - 1)
    return tuple(row)


async def copy_log(conn: asyncpg.Connection, schema: str, requests: Sequence[Request]) -> int:
    """Stream the events of `requests` into the schema's events table; returns how many."""
    count = 0

    def counted() -> Iterator[tuple[Any, ...]]:
        nonlocal count
        for row in log_rows(requests):
            count += 1
            yield row

    await conn.copy_records_to_table(
        "events", records=counted(), columns=EVENT_COLUMNS, schema_name=schema
    )
    return count


async def copy_tickets(conn: asyncpg.Connection, schema: str, requests: Sequence[Request]) -> None:
    """Stream the read model's rows of `requests` into the schema's tickets table (its search
    vector is computed by the server as each row is written, as for the projection's)."""
    await conn.copy_records_to_table(
        "tickets",
        records=(ticket_row(r) for r in requests),
        columns=list(VIEW_COLUMNS),
        schema_name=schema,
    )
