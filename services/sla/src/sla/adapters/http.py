"""HTTP API of the sla service: a request's clocks (by key or id, as workflow's
`/requests/{ticket}`), each saying why it runs, pauses or stopped, and a desk's board of open
requests by business time left.

Reads are denied by default, as workflow's: the reader names their role (`X-Actor-Role`, and
`X-Actor-Organisation` for customers); without one 401, with a role that does not read the
desk's requests 403 (`reader`; the headers are read at the routes only, until signed tokens
replace them). The board is for the desk's support side only; a ticket's clocks are for the
support side and for customers of the request's own organisation (404 for others, as for an
unknown request), without the desk's pending timers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, Header, HTTPException, Query

from desk_contracts.inputs import quoted
from desk_platform.http import reader_role, refusals, service_app
from desk_policies.audience import Audience, may_read, reader_audience, reading_desks
from sla.application.timers import Desks, clocks_of

RoleHeader = Annotated[str | None, Header(max_length=64)]
OrganisationHeader = Annotated[str | None, Header(max_length=200)]
NO_READER = "no reader: X-Actor-Role names who reads"
CLOCKS_ANSWERS = refusals(
    {
        401: NO_READER,
        403: "X-Actor-Role is not a role of the request's desk that reads",
        404: "no such request known to the sla service (or not one the reader may see)",
    }
)


def create_app(pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime]) -> FastAPI:
    app = service_app("sla", pool)

    def reader(policy_id: str, role: str | None) -> Audience:
        """As whom the reader naming `role` reads desk `policy_id` (a desk of `desks`): 401
        without a role, 403 for a role that reads nothing of that desk."""
        audience = reader_audience(desks.policies[policy_id], reader_role(role))
        if audience is None:
            raise HTTPException(403, f"{quoted(role)} is not a role of desk {policy_id} that reads")
        return audience

    async def clocks_for(ticket: str, role: str | None, organisation: str | None) -> dict[str, Any]:
        """The clocks of the request whose id or key is `ticket`, as the reader may see them.
        Who reads comes first: a reader of no desk learns no request's existence."""
        if not reading_desks(desks.policies.values(), reader_role(role)):
            raise HTTPException(403, f"{quoted(role)} is not a role of any desk that reads")
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                """SELECT ticket_id, policy_id, organisation_id FROM clock_board
                   WHERE ticket_id = $1 OR key = $1""",
                ticket,
            )
            if row is None or row["policy_id"] not in desks.policies:
                raise HTTPException(404, f"no request {quoted(ticket)} known to the sla service")
            audience = reader(row["policy_id"], role)
            if not may_read(audience, organisation, row["organisation_id"]):
                raise HTTPException(404, f"no request {quoted(ticket)} known to the sla service")
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
        x_actor_role: RoleHeader = None,
        x_actor_organisation: OrganisationHeader = None,
    ) -> dict[str, Any]:
        """A request's clocks, by its key (e.g. SPT-1042) or its id."""
        return await clocks_for(ticket, x_actor_role, x_actor_organisation)

    @app.get("/tickets/{ticket_id}/clocks", responses=CLOCKS_ANSWERS)
    async def clocks(
        ticket_id: str,
        x_actor_role: RoleHeader = None,
        x_actor_organisation: OrganisationHeader = None,
    ) -> dict[str, Any]:
        """A ticket's clocks, by its id (as `/requests/{ticket}/clocks`)."""
        return await clocks_for(ticket_id, x_actor_role, x_actor_organisation)

    @app.get(
        "/board",
        responses=refusals(
            {401: NO_READER, 403: "not the desk's support side", 404: "no such desk"}
        ),
    )
    async def board(
        policy_id: Annotated[str, Query(min_length=1, max_length=100)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        x_actor_role: RoleHeader = None,
    ) -> list[dict[str, Any]]:
        """A desk's open requests with running clocks, the most urgent first, with the business
        time left before the next breach (negative once breached): for its support side."""
        if policy_id not in desks.policies:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
        if reader(policy_id, x_actor_role) is not Audience.SUPPORT:
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

    return app
