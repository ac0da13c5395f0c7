"""HTTP API of workflow: read requests (detail with history newest first, lists by organisation)
and act on them with commands; optimistic concurrency through ETag / If-Match.

Each reader reads as the audience of their role (`desk_policies.audience`): the support side
sees every fact, a customer their own organisation's requests without internal comments,
internal fields and the names of internal roles. The detail's history is paged over the entries
the reader may see: `history_limit` of them (default 100, at most 500) older than
`before_version` (the newest when absent), with `history_total` (how many the reader may see)
and `history_more`, so one read answers a bounded amount whatever the request holds. Versions
are the stream's, as If-Match needs them. A person's command on a request that has
reached its size limit (the store's stream bound) gets 409 saying to open a new request.

`add-participant` names someone who will receive the request's mail: the directory must admit
them in the request's organisation (`Directory.may_take_part`), else 422 with the reason. So
must `assign` its assignee (mailed too), who must be staff of the request's desk
(`Directory.may_be_assigned`). A group (`group_id`) is a name the desk uses: the policies and
the directory define no groups, and no mail goes to one. The checks are here, not in the pure
`decide`, because the directory is the deployment's data, read at start like the policies."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Body, FastAPI, Header, HTTPException, Query, Response
from pydantic import TypeAdapter, ValidationError

from desk_contracts.inputs import quoted
from desk_eventstore.records import RecordedEvent
from desk_eventstore.store import ConcurrencyError, StreamFull
from desk_platform.edge import validation_details
from desk_platform.http import service_app
from desk_platform.logging import log_context
from desk_policies.audience import (
    Audience,
    entry_seen_by,
    may_read,
    reader_audience,
    request_seen_by,
    role_seen_by,
)
from desk_policies.directory import Directory, load_directory
from desk_policies.model import DeskPolicy
from workflow.application.tickets import (
    Loaded,
    UnknownPolicy,
    UnknownTicket,
    execute,
    load,
    resolve_id,
)
from workflow.domain import commands as c
from workflow.domain.commands import Actor, Command
from workflow.domain.rules import Rejection

SYSTEM_ONLY = {c.SendReminder, c.AutoClose, c.RecordDeliveryFailure}


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


COMMANDS: dict[str, type[Command]] = {
    _kebab(cls.__name__): cls
    for cls in vars(c).values()
    if isinstance(cls, type)
    and issubclass(cls, Command)
    and cls is not Command
    and cls not in SYSTEM_ONLY
}


HISTORY_LIMIT = 100
MAX_HISTORY_LIMIT = 500


def view(
    loaded: Loaded,
    audience: Audience,
    history_limit: int = HISTORY_LIMIT,
    before_version: int | None = None,
) -> dict[str, Any]:
    """The request as `audience` sees it (`desk_policies.audience`), with one page of the
    history entries it may see, newest first: at most `history_limit` entries below
    `before_version` (from the newest when None). `history_total` counts what it may see."""
    state, policy = loaded.state, loaded.state.policy
    seen = [e for e in (_entry(audience, policy, r) for r in loaded.history) if e is not None]
    older = [e for e in seen if before_version is None or e["version"] < before_version]
    page = older[-history_limit:]
    status = policy.status(state.status or policy.initial_status)
    first = loaded.history[0].payload
    request = {
        "ticket_id": state.ticket_id,
        "key": state.key,
        "policy_id": policy.id,
        "subject": first.get("subject"),
        "description": first.get("description"),
        "request_type": state.request_type,
        "priority": state.priority,
        "status": {
            "id": status.id,
            "label": status.labels.en,
            "labels": status.labels.model_dump(),
            "category": status.category.value,
            "expected_actor": role_seen_by(audience, policy, status.expected_actor),
        },
        "organisation_id": state.organisation_id,
        "requester_id": state.requester_id,
        "assignee_id": state.assignee_id,
        "participants": sorted(state.participants),
        "links": list(state.links),
        "resolution_code": state.resolution_code,
        "version": state.version,
    }
    return {
        **request_seen_by(audience, policy, request),
        "history": page[::-1],
        "history_total": len(seen),
        "history_more": len(page) < len(older),
    }


def _entry(audience: Audience, policy: DeskPolicy, r: RecordedEvent) -> dict[str, Any] | None:
    """One history entry as `audience` sees it, or None when it is not for them."""
    data = {k: v for k, v in r.payload.items() if k != "ticket_id"}
    seen = entry_seen_by(audience, policy, r.event_type, data)
    if seen is None:
        return None
    return {
        "version": r.stream_version,
        "type": r.event_type,
        "event_id": str(r.event_id),
        "occurred_at": r.payload.get("occurred_at"),
        "data": seen,
    }


def create_app(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    clock: Callable[[], datetime],
    *,
    directory: Directory | None = None,
) -> FastAPI:
    """Workflow's app; `directory` admits participants and assignees (the shipped one if
    None)."""
    people = directory if directory is not None else load_directory()
    app = service_app("workflow", pool)

    def actor_of(
        x_actor: str | None, x_actor_role: str | None, x_actor_organisation: str | None
    ) -> Actor:
        if not x_actor or not x_actor_role:
            raise HTTPException(401, "X-Actor and X-Actor-Role headers name who acts")
        return Actor(x_actor.lower(), x_actor_role, x_actor_organisation)

    def reader_of(
        loaded: Loaded, ticket: str, organisation: str | None, role: str | None
    ) -> Audience:
        """Deny by default: the reader names a role of the request's desk that reads requests,
        and a customer sees their own organisation's requests only (404 otherwise, as for an
        unknown request). (Who sets these headers is the gateway's job: it authenticates the
        person and must not pass a client's own values through.)"""
        if not role:
            raise HTTPException(
                401, "X-Actor-Role (and X-Actor-Organisation for customers) name who reads"
            )
        state = loaded.state
        audience = reader_audience(state.policy, role)
        if audience is None:
            raise HTTPException(
                403, f"{quoted(role)} is not a role of desk {state.policy.id} that sees requests"
            )
        if not may_read(audience, organisation, state.organisation_id):
            raise HTTPException(404, f"no request {quoted(ticket)}")
        return audience

    def audiences_of(role: str) -> dict[str, Audience]:
        """The desks where `role` reads requests, and as whom (403 when none)."""
        desks = {p.id: a for p in policies.values() if (a := reader_audience(p, role))}
        if not desks:
            raise HTTPException(403, f"{quoted(role)} is not a role of any desk that sees requests")
        return desks

    async def loaded_for(conn: asyncpg.Connection, ticket: str) -> Loaded:
        try:
            return await load(conn, policies, await resolve_id(conn, ticket))
        except UnknownTicket:
            raise HTTPException(404, f"no request {quoted(ticket)}") from None
        except UnknownPolicy as error:
            raise HTTPException(500, str(error)) from None

    @app.get("/requests/{ticket}")
    async def get_request(
        ticket: str,
        response: Response,
        history_limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)] = HISTORY_LIMIT,
        before_version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        x_actor_role: Annotated[str | None, Header(max_length=64)] = None,
        x_actor_organisation: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, Any]:
        """The request and one page of its history (see module); the next page is asked
        with `before_version` = the oldest version of this one."""
        async with pool.acquire() as conn:
            loaded = await loaded_for(conn, ticket)
        audience = reader_of(loaded, ticket, x_actor_organisation, x_actor_role)
        response.headers["ETag"] = f'"{loaded.state.version}"'
        return view(loaded, audience, history_limit, before_version)

    @app.get("/requests")
    async def list_requests(
        organisation_id: Annotated[str | None, Query(max_length=200)] = None,
        policy_id: Annotated[str | None, Query(max_length=100)] = None,
        state: Annotated[str, Query(pattern="^(open|closed|all)$")] = "open",
        expected_actor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        x_actor_role: Annotated[str | None, Header(max_length=64)] = None,
        x_actor_organisation: Annotated[str | None, Header(max_length=200)] = None,
    ) -> list[dict[str, Any]]:
        """A company's requests (open, closed or all), or a desk's by who is expected to act,
        of the desks where the reader's role reads; a customer lists their own organisation's
        requests only, each row as `desk_policies.audience` lets them see it."""
        if not x_actor_role:
            raise HTTPException(401, "X-Actor-Role names who reads")
        desks = audiences_of(x_actor_role)
        if Audience.CUSTOMER in desks.values():
            if organisation_id is None:
                organisation_id = x_actor_organisation
            if organisation_id is None or organisation_id != x_actor_organisation:
                raise HTTPException(403, "a customer lists their own organisation's requests")
        if organisation_id is None and policy_id is None:
            raise HTTPException(422, "give organisation_id or policy_id")
        clauses = ["policy_id = ANY($1)"]
        args: list[Any] = [list(desks)]
        for column, value in (
            ("organisation_id", organisation_id),
            ("policy_id", policy_id),
            ("expected_actor", expected_actor),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} = ${len(args)}")
        if state == "open":
            clauses.append("category <> 'closed'")
        elif state == "closed":
            clauses.append("category = 'closed'")
        args.append(limit)
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                f"""SELECT * FROM tickets WHERE {" AND ".join(clauses)}
                    ORDER BY updated_at DESC LIMIT ${len(args)}""",
                *args,
            )
        return [
            request_seen_by(desks[row["policy_id"]], policies[row["policy_id"]], dict(row))
            for row in rows
        ]

    @app.post("/requests/{ticket}/{command}")
    async def act(
        ticket: str,
        command: str,
        response: Response,
        body: Annotated[dict[str, Any] | None, Body()] = None,
        if_match: Annotated[str | None, Header(max_length=64)] = None,
        x_actor: Annotated[str | None, Header(max_length=320)] = None,
        x_actor_role: Annotated[str | None, Header(max_length=64)] = None,
        x_actor_organisation: Annotated[str | None, Header(max_length=200)] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> dict[str, Any]:
        cls = COMMANDS.get(command)
        if cls is None:
            known = ", ".join(COMMANDS)
            raise HTTPException(404, f"no command {quoted(command)} (known: {known})")
        actor = actor_of(x_actor, x_actor_role, x_actor_organisation)
        try:
            cmd = TypeAdapter(cls).validate_python({**(body or {}), "actor": actor})
        except ValidationError as error:
            errors = [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
            raise HTTPException(422, validation_details(errors)) from None
        correlation_id = x_correlation_id or str(uuid.uuid4())
        async with pool.acquire() as conn, conn.transaction():
            loaded = await loaded_for(conn, ticket)
            reader_of(loaded, ticket, actor.organisation_id, actor.role)
            if if_match is not None and if_match.strip('"') != str(loaded.state.version):
                raise HTTPException(
                    412,
                    f"request {loaded.state.key} is at version {loaded.state.version}, "
                    f"not {quoted(if_match)}: reload it",
                )
            if isinstance(cmd, c.AddParticipant):
                refused = people.may_take_part(
                    cmd.participant_id, loaded.state.organisation_id, loaded.state.policy.id
                )
                if refused is not None:
                    raise HTTPException(422, f"participant refused: {refused}")
                cmd = replace(cmd, participant_id=cmd.participant_id.lower())
            if isinstance(cmd, c.Assign) and cmd.assignee_id is not None:
                refused = people.may_be_assigned(cmd.assignee_id, loaded.state.policy.id)
                if refused is not None:
                    raise HTTPException(422, f"assignee refused: {refused}")
            with log_context(ticket_id=loaded.state.ticket_id, correlation_id=correlation_id):
                try:
                    outcome = await execute(
                        conn, loaded, cmd, clock(), correlation_id=correlation_id
                    )
                except ConcurrencyError as error:
                    raise HTTPException(409, f"{error}: reload and try again") from None
                except StreamFull:
                    key = loaded.state.key
                    raise HTTPException(
                        409,
                        f"request {key} has reached its size limit: "
                        f"open a new request that references {key}",
                    ) from None
        if isinstance(outcome, Rejection):
            raise HTTPException(409, outcome.reason)
        response.headers["ETag"] = f'"{outcome.state.version}"'
        return {
            "ticket_id": outcome.state.ticket_id,
            "key": outcome.state.key,
            "status": outcome.state.status,
            "version": outcome.state.version,
            "events": [e.event_type for e in outcome.events],
        }

    return app
