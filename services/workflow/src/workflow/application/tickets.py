"""Load a ticket from its stream, execute a command with optimistic concurrency, keep the read
model in step, all in the caller's transaction. Every event appended carries, in its metadata,
the request's state after it (`desk_contracts.state`): what the relay publishes with it.

A person's command on a full stream is refused by the store (`StreamFull`); the desk's own
commands (`DESK_COMMANDS`: reminders, auto-close, failed deliveries, survey answers) are always
appended, so they are never lost to a full stream.

The read model's row also keeps what search reads (`workflow.adapters.search_api`): the
request's description, and the texts people wrote on it since (`search_texts`: every comment,
public or internal, and the comment or reason a command carries), appended as each decision is
executed, oldest first, up to `MAX_COMMENTS` characters."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.state import STATE_METADATA
from desk_contracts.tickets import TicketCreated
from desk_eventstore.records import NewEvent, RecordedEvent
from desk_eventstore.store import append, append_to_streams, read_stream
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve, published
from workflow.domain.commands import (
    AnswerSurvey,
    AutoClose,
    Command,
    RecordDeliveryFailure,
    SendReminder,
)
from workflow.domain.decide import decide
from workflow.domain.rules import Rejection

log = structlog.get_logger(__name__)

# commands the desk itself carries out: exempt from the stream's bound (see module)
DESK_COMMANDS = (SendReminder, AutoClose, RecordDeliveryFailure, AnswerSurvey)
MAX_COMMENTS = 500_000  # characters of a request's written texts the read model keeps
TEXT_FIELDS = ("body", "comment", "reason")  # the fields of events that hold what people wrote
# the read model's columns a list row shows (not the texts kept for search, nor their index)
ROW_COLUMNS = (
    "ticket_id, key, policy_id, organisation_id, requester_id, subject, status, category, "
    "expected_actor, priority, assignee_id, version, created_at, updated_at, created_by, "
    "involved, priority_rank"
)


class UnknownTicket(LookupError):
    pass


class UnknownPolicy(LookupError):
    pass


@dataclass(frozen=True)
class Loaded:
    state: Ticket
    history: list[RecordedEvent]


async def resolve_id(conn: asyncpg.Connection, ticket: str) -> str:
    """A ticket id from an id or a key such as SPT-1042."""
    found = await conn.fetchval(
        "SELECT ticket_id FROM tickets WHERE ticket_id = $1 OR key = $1", ticket
    )
    if found is None:
        raise UnknownTicket(f"no request {ticket!r}")
    return str(found)


async def load(conn: asyncpg.Connection, policies: dict[str, DeskPolicy], ticket_id: str) -> Loaded:
    history = await read_stream(conn, ticket_id)
    if not history:
        raise UnknownTicket(f"no request {ticket_id!r}")
    first = history[0].to_event()
    assert isinstance(first, TicketCreated)
    policy = policies.get(first.policy_id)
    if policy is None:
        raise UnknownPolicy(f"request {first.key} belongs to unknown desk {first.policy_id!r}")
    state = Ticket.blank(policy, ticket_id)
    for recorded in history:
        state = evolve(state, recorded.to_event())
    return Loaded(state, history)


async def open_stream(
    conn: asyncpg.Connection,
    policies: dict[str, DeskPolicy],
    created: TicketCreated,
    event_id: str,
    correlation_id: str | None,
) -> Ticket | None:
    """Start the ticket's stream with intake's `TicketCreated` (same event id), which workflow
    then publishes on `ticket-events` with the request's first state. Returns None when the
    stream exists already."""
    policy = policies.get(created.policy_id)
    if policy is None:
        raise UnknownPolicy(f"unknown desk {created.policy_id!r}")
    if await read_stream(conn, created.ticket_id):
        return None
    state, new = _opening(policy, created, event_id, correlation_id)
    await append(conn, created.ticket_id, 0, [new], bounded=False)
    await save_view(conn, state, created.occurred_at, description=created.description)
    log.info("ticket_opened", key=created.key, status=state.status)
    return state


async def open_streams(
    conn: asyncpg.Connection,
    policies: dict[str, DeskPolicy],
    opened: Sequence[tuple[TicketCreated, str, str | None]],
) -> list[Ticket | None]:
    """`open_stream` for each of `opened` (event, event id, correlation id), in their order,
    with a few statements for all: the streams' appends in three, their rows in one."""
    unknown = {c.policy_id for c, _, _ in opened} - set(policies)
    if unknown:
        raise UnknownPolicy(f"unknown desk {sorted(unknown)[0]!r}")
    if len({c.ticket_id for c, _, _ in opened}) < len(opened):  # only one by one tells
        raise ValueError("a request opened twice among them")
    existing = await conn.fetchval(
        "SELECT array_agg(DISTINCT stream_id) FROM events WHERE stream_id = ANY($1::text[])",
        [created.ticket_id for created, _, _ in opened],
    )
    states: list[Ticket | None] = []
    streams: dict[str, list[NewEvent]] = {}
    rows = []
    for created, event_id, correlation_id in opened:
        if created.ticket_id in (existing or ()):
            states.append(None)
            continue
        state, new = _opening(policies[created.policy_id], created, event_id, correlation_id)
        streams[created.ticket_id] = [new]
        rows.append(view_row(state, created.occurred_at, description=created.description))
        states.append(state)
    if streams:
        await append_to_streams(conn, streams, bounded=False, new=True)
        await conn.executemany(_upsert(["description = $18"]), rows)
    for opening, (created, event_id, correlation_id) in zip(states, opened, strict=True):
        if opening is not None:
            log.info(
                "ticket_opened",
                ticket_id=created.ticket_id,
                event_id=event_id,
                correlation_id=correlation_id,
                key=created.key,
                status=opening.status,
            )
    return states


def _opening(
    policy: DeskPolicy, created: TicketCreated, event_id: str, correlation_id: str | None
) -> tuple[Ticket, NewEvent]:
    """The request's first state, and intake's `TicketCreated` (same event id) as workflow
    appends it, carrying that state."""
    state = evolve(Ticket.blank(policy, created.ticket_id), created)
    metadata = {"correlationid": correlation_id or created.ticket_id, **_state(state)}
    return state, NewEvent.from_event(created, event_id=uuid.UUID(event_id), metadata=metadata)


def _state(state: Ticket) -> dict[str, Any]:
    """The metadata entry that carries `state` with its event (see module)."""
    return {STATE_METADATA: published(state).model_dump(mode="json")}


@dataclass(frozen=True)
class Executed:
    state: Ticket
    events: list[Event]


async def execute(
    conn: asyncpg.Connection,
    loaded: Loaded,
    command: Command,
    now: datetime,
    *,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    id_seed: uuid.UUID | None = None,
) -> Executed | Rejection:
    """Decide, append at the loaded version (ConcurrencyError if the stream moved), evolve."""
    decision = decide(loaded.state, command, now)
    if isinstance(decision, Rejection):
        return decision
    metadata: dict[str, Any] = {"correlationid": correlation_id or loaded.state.ticket_id}
    if causation_id:
        metadata["causationid"] = causation_id
    # with a seed (a forwarded command's id), the same command delivered twice makes the same
    # event ids, so the second append is refused as a duplicate
    ids = [uuid.uuid5(id_seed, str(n)) if id_seed else uuid.uuid4() for n in range(len(decision))]
    state = loaded.state
    new = []
    for event, event_id in zip(decision, ids, strict=True):
        state = evolve(state, event)
        new.append(
            NewEvent.from_event(event, event_id=event_id, metadata={**metadata, **_state(state)})
        )
    bounded = not isinstance(command, DESK_COMMANDS)
    await append(conn, loaded.state.ticket_id, loaded.state.version, new, bounded=bounded)
    if decision:
        await save_view(conn, state, now, texts=search_texts(decision))
        log.info(
            "command_executed",
            command=type(command).__name__,
            events=[e.event_type for e in decision],
            version=state.version,
        )
    return Executed(state, decision)


def search_texts(events: Iterable[Event]) -> list[str]:
    """What people wrote in `events`, in their order, for search: comment bodies (public and
    internal), requesters' answers, and the comment or reason a command carries (information
    requested, resolution, escalation and its return, priority change...); blank ones left out.
    A request's description is not among them (`TicketCreated` has its own column)."""
    found = []
    for event in events:
        for name in _text_fields(type(event)):
            value = getattr(event, name)
            if isinstance(value, str) and value.strip():
                found.append(value)
    return found


@functools.cache
def _text_fields(cls: type[Event]) -> tuple[str, ...]:
    """The `TEXT_FIELDS` events of `cls` have (looked up once: a rebuild asks for every event)."""
    return tuple(name for name in TEXT_FIELDS if name in cls.model_fields)


# the read model's columns `view_row` gives the values of, in its order
VIEW_COLUMNS = (
    "ticket_id", "key", "policy_id", "organisation_id", "requester_id", "subject", "status",
    "category", "expected_actor", "priority", "assignee_id", "version", "created_at",
    "updated_at", "created_by", "involved", "priority_rank", "description", "comments",
)  # fmt: skip


def view_row(
    state: Ticket, now: datetime, *, description: str = "", texts: Sequence[str] = ()
) -> tuple[Any, ...]:
    """The values of the request's row of workflow's read model (`VIEW_COLUMNS`) from its
    state, as a new row holds them: who is involved (requester, creator, participants) for the
    requesters' lists; for search, its `description` and `texts` (see module), bounded."""
    status = state.policy.status(state.status or state.policy.initial_status)
    involved = sorted({state.requester_id, state.created_by, *state.participants} - {""})
    return (
        state.ticket_id,
        state.key,
        state.policy.id,
        state.organisation_id,
        state.requester_id,
        state.subject,
        status.id,
        status.category.value,
        status.expected_actor,
        state.priority,
        state.assignee_id,
        state.version,
        state.created_at or now,
        now,
        state.created_by,
        involved,
        state.policy.priority_rank(state.priority) or 0,
        description,
        "\n".join(texts)[:MAX_COMMENTS],
    )


async def save_view(
    conn: asyncpg.Connection,
    state: Ticket,
    now: datetime,
    *,
    description: str | None = None,
    texts: Sequence[str] = (),
) -> None:
    """Upsert the request's row of workflow's read model (lists and filters) from its state
    (`view_row`); for search, the `description` when given, and `texts` appended to the
    request's comments (see module). The texts' columns are written only when something is new:
    their search vector is computed again only then."""
    row = view_row(state, now, description=description or "", texts=texts)
    searched = []  # the texts' columns, only when something is new (see above)
    if description is not None:
        searched.append("description = $18")
    if row[-1]:
        searched.append(
            "comments = CASE WHEN tickets.comments = '' THEN $19"  # bounded as view_row bounds it
            f" ELSE left(tickets.comments || E'\\n' || $19, {MAX_COMMENTS}) END"
        )
    await conn.execute(_upsert(searched), *row)


def _upsert(searched: Sequence[str]) -> str:
    """The statement that upserts a `view_row`, also setting the texts' columns `searched`."""
    return f"""INSERT INTO tickets ({", ".join(VIEW_COLUMNS)})
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                   $18, $19)
           ON CONFLICT (ticket_id) DO UPDATE SET
               status = $7, category = $8, expected_actor = $9, priority = $10,
               assignee_id = $11, version = $12, updated_at = $14, created_by = $15,
               involved = $16, priority_rank = $17{"".join(f", {c}" for c in searched)}"""
