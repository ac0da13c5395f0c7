"""HTTP API of workflow: read requests (detail with history newest first, lists by organisation)
and act on them with commands (one operation each: `workflow.adapters.commands_api`);
optimistic concurrency through ETag / If-Match. `GET /desks` tells what each desk offers,
`GET /desks/{policy_id}/summary` a desk's figures for its leads (`workflow.adapters.summary_api`).

Every route needs a verified identity (`Authorization: Bearer`, a token the portal signed for
workflow: 401 without one); a reader reads as the audience the roles of their identity give them
at the request's desk (`workflow.adapters.readers`, `desk_policies.audience`; `X-Actor-Role` may
choose one of those roles): the support side sees every fact, a customer their own
organisation's requests (the organisation their identity carries) without internal comments,
internal fields and the names of internal roles. The detail's history is paged over the entries
the reader may see: `history_limit` of them (default 100, at most 500) older than
`before_version` (the newest when absent), with `history_total` (how many the reader may see)
and `history_more`, so one read answers a bounded amount whatever the request holds. Versions
are the stream's, as If-Match needs them. Search, for the support side: `GET /search`
(`workflow.adapters.search_api`).

`as_of` (an instant with its offset) reads the request as it was then, by the same rules: its
stream folded with the one fold up to that instant (`workflow.application.history`), its history
up to then; 404 when it did not exist yet, 422 for what is not an instant this service reads; an
instant still to come reads it as it is now. Such a past view carries no ETag (no command acts
on the past). The audit of a request and of a desk's period: `workflow.adapters.history_api`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Query, Response

from desk_contracts.identity import Identity
from desk_contracts.inputs import quoted
from desk_eventstore.records import RecordedEvent
from desk_platform.http import IDENTITY_ANSWERS, SCHEMAS, RoleChoice, refusals, service_app
from desk_platform.identity import Verifier, requires_identity
from desk_platform.testclocks import RequestTime, TestClocks
from desk_policies.audience import (
    Audience,
    entry_seen_by,
    identity_reads,
    request_seen_by,
    role_seen_by,
)
from desk_policies.description import DeskDescription, desk_for
from desk_policies.directory import DirectorySource, load_directory
from desk_policies.model import DeskPolicy
from workflow.adapters.commands_api import command_router
from workflow.adapters.history_api import INSTANT_REFUSED, history_router, instant_of
from workflow.adapters.readers import desks_read_by, reader_of
from workflow.adapters.search_api import search_router
from workflow.adapters.sql_where import Where
from workflow.adapters.summary_api import summary_router
from workflow.application.history import loaded_at
from workflow.application.tickets import (
    ROW_COLUMNS,
    Loaded,
    UnknownPolicy,
    UnknownTicket,
    load,
    resolve_id,
)

HISTORY_LIMIT = 100
MAX_HISTORY_LIMIT = 500
MAX_SEARCH = 200  # characters of a list's search
QUALIFICATION = ("product_version", "company", "contact", "error_message")  # of TicketCreated
SORTED_BY = {  # the columns each sort orders by (a key by its prefix, then as a number)
    "updated": ("updated_at",),
    "created": ("created_at",),
    "key": ("split_part(key, '-', 1)", "length(key)", "key"),
    "priority": ("priority_rank",),
    "status": ("status",),
}
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9²]{0,19}-[0-9]{1,12}")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]")


class RequestFilter(Where):
    """The WHERE clause of a list of requests (see `Where`), with the list's search."""

    def search(self, q: str) -> None:
        """A request's key (exact, any case), or words that must all be in the subject, taken
        literally (`%` and `_` are no wildcards); 422 for control characters."""
        if _UNSAFE.search(q):
            raise HTTPException(422, "the search holds characters that are not text")
        words = q.split()
        if len(words) == 1 and _KEY.fullmatch(words[0]):
            self.add("lower(key) = lower({})", words[0])
            return
        for word in words[:20]:
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            self.add("subject ILIKE {} ESCAPE '\\'", f"%{escaped}%")


def list_sql(where: Where, sort: str, order: str) -> tuple[str, str]:
    """The SQL of a list of requests: how many match `where` (with its arguments), and one
    page of them sorted by `sort` (a key of `SORTED_BY`) in `order` (with its arguments, then
    the limit and the offset)."""
    ordering = ", ".join(f"{c} {order.upper()}" for c in (*SORTED_BY[sort], "ticket_id"))
    n = len(where.args)
    return (
        f"SELECT count(*) FROM tickets WHERE {where}",
        f"""SELECT {ROW_COLUMNS} FROM tickets WHERE {where} ORDER BY {ordering}
            LIMIT ${n + 1} OFFSET ${n + 2}""",
    )


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
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "muted": sorted(state.muted & {state.requester_id, *state.participants}),
        **{field: first.get(field) for field in QUALIFICATION},
        "attachments": [a for e in seen[::-1] for a in e["data"].get("attachments") or ()],
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
    verifier: Verifier,
    directory: DirectorySource | None = None,
    test_clocks: TestClocks | None = None,
) -> FastAPI:
    """Workflow's app; `verifier` checks who calls (identity tokens for workflow), `directory`
    admits participants and assignees (a fixed one, or what gives the current one: asked at
    each command; the shipped one if None, for tests), `test_clocks` the clocks requests may
    live on (None: test clocks are not enabled)."""
    people = directory if directory is not None else load_directory()
    identified = Depends(requires_identity(verifier))  # the verified caller
    app = service_app("workflow", pool)
    times = RequestTime(clock, test_clocks)  # what time it is for a request

    async def loaded_for(conn: asyncpg.Connection, ticket: str) -> Loaded:
        try:
            return await load(conn, policies, await resolve_id(conn, ticket))
        except UnknownTicket:
            raise HTTPException(404, f"no request {quoted(ticket)}") from None
        except UnknownPolicy as error:
            raise HTTPException(500, str(error)) from None

    @app.get(
        "/requests/{ticket}",
        responses={
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "the identity reads no desk's requests, or does not grant the role "
                    "X-Actor-Role chooses",
                    404: "no such request (or not one the reader may see), or one that did "
                    "not exist yet at as_of",
                }
            ),
            **INSTANT_REFUSED,
        },
    )
    async def get_request(
        ticket: str,
        response: Response,
        history_limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)] = HISTORY_LIMIT,
        before_version: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
        as_of: Annotated[str | None, Query(max_length=100)] = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> dict[str, Any]:
        """The request and one page of its history (see module); the next page is asked
        with `before_version` = the oldest version of this one. With `as_of`, the request as
        it was at that instant (see module)."""
        desks = desks_read_by(identity, policies.values(), x_actor_role)  # before any lookup
        past = None if as_of is None else instant_of(as_of, "as_of")
        async with pool.acquire() as conn:
            loaded = await loaded_for(conn, ticket)
        audience = reader_of(loaded, ticket, identity, desks)
        if past is not None:  # no later than the request's now (its test clock's, if on one)
            past = min(past, times.now(loaded.state.test_clock))
        if past is None:
            response.headers["ETag"] = f'"{loaded.state.version}"'
            return view(loaded, audience, history_limit, before_version)
        then = loaded_at(loaded, past)
        if then is None:
            raise HTTPException(404, f"no request {quoted(ticket)} at {past.isoformat()}")
        return {**view(then, audience, history_limit, before_version), "as_of": past}

    @app.get(
        "/requests",
        responses={
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "the identity reads no desk's requests (or does not grant the role "
                    "X-Actor-Role chooses), or a customer lists another organisation's",
                }
            ),
            422: {
                "description": "invalid input, or none of organisation_id, policy_id and "
                "involving given (a sentence)",
                "content": {
                    "application/json": {
                        "schema": {
                            "anyOf": [
                                {"$ref": f"{SCHEMAS}HTTPValidationError"},
                                {"$ref": f"{SCHEMAS}Problem"},
                            ]
                        }
                    }
                },
            },
        },
    )
    async def list_requests(
        response: Response,
        organisation_id: Annotated[str | None, Query(max_length=200)] = None,
        policy_id: Annotated[str | None, Query(max_length=100)] = None,
        state: Annotated[str, Query(pattern="^(open|closed|all)$")] = "open",
        expected_actor: Annotated[str | None, Query(max_length=64)] = None,
        q: Annotated[str | None, Query(max_length=MAX_SEARCH)] = None,
        involving: Annotated[str | None, Query(pattern="^me$")] = None,
        sort: Annotated[str, Query(pattern="^(updated|created|key|priority|status)$")] = "updated",
        order: Annotated[str, Query(pattern="^(desc|asc)$")] = "desc",
        offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> list[dict[str, Any]]:
        """A company's requests (open, closed or all), or a desk's by who is expected to act,
        of the desks whose requests the reader reads; a customer lists their own organisation's
        requests only (their identity's), each row as `desk_policies.audience` lets them see
        it. `q`: a request's key (exact, any case) or words that must all appear in the
        subject; `involving=me`: the requests whose requester, creator or participant the
        caller is; sorted by `sort` and `order`, one page of `limit` rows from `offset`;
        `X-Total-Count` says how many rows match."""
        desks = desks_read_by(identity, policies.values(), x_actor_role)
        if Audience.CUSTOMER in desks.values():
            own = identity.organisation
            if organisation_id is None:
                organisation_id = own
            if organisation_id is None or organisation_id != own:
                raise HTTPException(403, "a customer lists their own organisation's requests")
        if organisation_id is None and policy_id is None and involving is None:
            raise HTTPException(422, "give organisation_id, policy_id or involving")
        where = RequestFilter([list(desks)], ["policy_id = ANY($1)"])
        where.equal("organisation_id", organisation_id)
        where.equal("policy_id", policy_id)
        where.equal("expected_actor", expected_actor)
        if state != "all":
            where.clauses.append(
                "category <> 'closed'" if state == "open" else "category = 'closed'"
            )
        if involving == "me":
            where.add("involved @> ARRAY[{}]::text[]", identity.subject)
        if q is not None:
            where.search(q)
        counted, paged = list_sql(where, sort, order)
        async with pool.acquire() as conn:
            total = await conn.fetchval(counted, *where.args)
            rows = await conn.fetch(paged, *where.args, limit, offset)
        response.headers["X-Total-Count"] = str(total)
        return [
            request_seen_by(desks[row["policy_id"]], policies[row["policy_id"]], dict(row))
            for row in rows
        ]

    @app.get("/desks", responses=IDENTITY_ANSWERS)
    async def desks(identity: Identity = identified) -> list[DeskDescription]:
        """The desks: roles, statuses, transitions, resolution codes, priorities... (what a
        portal or a script needs to build its screens; see `desk_policies.description`).
        The desk's support side (a support role there) reads each desk whole, anyone else its
        customer side."""
        reads = identity_reads(identity, policies.values())
        return [desk_for(p, reads.get(p.id)) for p in policies.values()]

    app.include_router(command_router(pool, policies, times, people, loaded_for, verifier))
    app.include_router(summary_router(pool, policies, verifier))
    app.include_router(search_router(pool, policies, verifier))
    app.include_router(history_router(pool, policies, verifier, loaded_for))
    return app
