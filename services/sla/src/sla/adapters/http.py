"""HTTP API of the sla service: a request's clocks (by key or id, as workflow's
`/requests/{ticket}`), each saying why it runs, pauses or stopped, and a desk's board of open
requests by business time left; a desk's figures for its leads (`sla.adapters.summary_api`).

Reads are denied by default, as workflow's: every route needs a verified identity
(`Authorization: Bearer`, a token the portal signed for sla: 401 without one), which reads as the
roles it grants at the desk give it (`desk_policies.audience`; `X-Actor-Role` may choose one of
them, 403 for a role it does not grant). Who reads comes first: an identity that reads no desk's
requests gets 403 before any request is looked up. The board is for the desk's support side only
(403 for anyone else); a ticket's clocks are for the support side and for customers of the
request's own organisation, the one their identity carries (404 for others, as for an unknown
request), without the desk's pending timers. The agents' queues are `sla.adapters.queue_api`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import Depends, FastAPI, HTTPException, Query

from desk_contracts.identity import Identity
from desk_contracts.inputs import BadInstant, instant, quoted
from desk_platform.http import IDENTITY_ANSWERS, SCHEMAS, RoleChoice, refusals, service_app
from desk_platform.identity import Verifier, requires_identity
from desk_policies.audience import Audience, NotYourRole, reader_desks, request_reader
from sla.adapters.queue_api import queue_router
from sla.adapters.summary_api import summary_router
from sla.adapters.testclocks_api import test_clocks_router
from sla.application.timers import Desks, clocks_of, now_for, request_of
from sla.domain.as_of import timeline_at
from sla.domain.clocks import TicketClocks, read_clocks

CLOCKS_ANSWERS = {
    **IDENTITY_ANSWERS,
    **refusals(
        {
            403: "the identity reads no desk's requests, or does not grant the role "
            "X-Actor-Role chooses",
            404: "no such request known to the sla service (or not one the reader may see), "
            "or not yet at as_of",
        }
    ),
    422: {
        "description": "invalid input, or an as_of that is not an instant with its offset in "
        "the years sla reads (a sentence)",
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
}
AsOf = Annotated[str | None, Query(max_length=100)]


def as_of_instant(text: str | None) -> datetime | None:
    """The instant `as_of` names; None when not given; 422 with why."""
    if text is None:
        return None
    try:
        return instant(text)
    except BadInstant as error:
        raise HTTPException(422, f"as_of: {error}") from None


def create_app(
    pool: asyncpg.Pool,
    desks: Desks,
    clock: Callable[[], datetime],
    *,
    verifier: Verifier,
    test_clocks: bool = False,
) -> FastAPI:
    """The sla service's app; `verifier` checks who calls (identity tokens for sla);
    `test_clocks`: serve the test clocks' API (`sla.adapters.testclocks_api`)."""
    identified = Depends(requires_identity(verifier))  # the verified caller
    app = service_app("sla", pool)

    def read_by(identity: Identity, role: str | None) -> dict[str, Audience]:
        """The desks whose requests `identity` reads (in `role` when they choose one), and as
        whom; 403 when none, or for a role they do not hold."""
        try:
            return reader_desks(identity, desks.policies.values(), role)
        except NotYourRole as error:
            raise HTTPException(403, str(error)) from None

    async def past_clocks(
        conn: asyncpg.Connection, ticket_id: str, as_of: datetime
    ) -> tuple[TicketClocks, datetime] | None:
        """The request's clocks as they stood at `as_of` (no later than its now: the real time,
        or its test clock's), and that instant; None when sla does not know it whole, or it did
        not exist yet."""
        known = await request_of(conn, ticket_id)
        if known is None:
            return None
        as_of = min(as_of, await now_for(conn, known[1], clock()))
        then = timeline_at(*known, as_of)
        if then is None:
            return None
        timeline, state = then
        policy, calendar = desks.of(state.policy_id)
        return read_clocks(timeline, state, policy, calendar, as_of), as_of

    async def clocks_for(
        ticket: str, identity: Identity, role: str | None, as_of: str | None = None
    ) -> dict[str, Any]:
        """The clocks of the request whose id or key is `ticket`, as the reader may see them
        (as they stood at `as_of`, when given). Who reads comes first: a reader of no desk
        learns no request's existence."""
        read = read_by(identity, role)
        past = as_of_instant(as_of)
        unknown = HTTPException(404, f"no request {quoted(ticket)} known to the sla service")
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT ticket_id, policy_id, organisation_id FROM clock_board
                   WHERE ticket_id = $1 OR key = $1""",
                ticket,
            )
            if row is None or row["policy_id"] not in desks.policies:
                raise unknown
            audience = request_reader(identity, read, row["policy_id"], row["organisation_id"])
            if audience is None:
                raise unknown
            if past is not None:
                stood = await past_clocks(conn, row["ticket_id"], past)
                if stood is None:
                    raise unknown
                return {**asdict(stood[0]), "as_of": stood[1]}
            reading = await clocks_of(conn, desks, row["ticket_id"], clock())
            timers = await conn.fetch(
                """SELECT kind, occurrence, fire_at, armed_version FROM timers
                   WHERE ticket_id = $1 AND fired_at IS NULL ORDER BY fire_at""",
                row["ticket_id"],
            )
        if reading is None:
            raise HTTPException(404, f"no request {quoted(ticket)} known to the sla service")
        if audience is Audience.CUSTOMER:
            return asdict(reading)
        return {**asdict(reading), "pending_timers": [dict(t) for t in timers]}

    @app.get("/requests/{ticket}/clocks", responses=CLOCKS_ANSWERS)
    async def request_clocks(
        ticket: str,
        as_of: AsOf = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> dict[str, Any]:
        """A request's clocks, by its key (e.g. SPT-1042) or its id (as they stood at `as_of`,
        when given)."""
        return await clocks_for(ticket, identity, x_actor_role, as_of)

    @app.get("/tickets/{ticket_id}/clocks", responses=CLOCKS_ANSWERS)
    async def clocks(
        ticket_id: str,
        as_of: AsOf = None,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> dict[str, Any]:
        """A ticket's clocks, by its id (as `/requests/{ticket}/clocks`)."""
        return await clocks_for(ticket_id, identity, x_actor_role, as_of)

    @app.get(
        "/board",
        responses={
            **IDENTITY_ANSWERS,
            **refusals(
                {
                    403: "not the desk's support side (or a role X-Actor-Role chooses that the "
                    "identity does not grant)",
                    404: "no such desk",
                }
            ),
        },
    )
    async def board(
        policy_id: Annotated[str, Query(min_length=1, max_length=100)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        identity: Identity = identified,
        x_actor_role: RoleChoice = None,
    ) -> list[dict[str, Any]]:
        """A desk's open requests with running clocks, the most urgent first, with the business
        time left before the next breach (negative once breached): for its support side."""
        if policy_id not in desks.policies:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        if read_by(identity, x_actor_role).get(policy_id) is not Audience.SUPPORT:
            raise HTTPException(403, f"the board is for the support side of desk {policy_id}")
        _, calendar = desks.of(policy_id)
        now = clock()
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT * FROM clock_board WHERE policy_id = $1 AND next_due IS NOT NULL
                   ORDER BY next_due LIMIT $2""",
                policy_id,
                limit,
            )
        board = []
        for row in rows:
            due = row["next_due"]
            left = calendar.between(now, due) if due > now else -calendar.between(due, now)
            board.append({**dict(row), "business_time_left_s": int(left.total_seconds())})
        return board

    app.include_router(summary_router(pool, desks, clock, verifier))
    app.include_router(queue_router(pool, desks, clock, verifier=verifier))
    if test_clocks:
        app.include_router(test_clocks_router(pool, desks, clock, verifier=verifier))
    return app
