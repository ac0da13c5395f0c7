"""HTTP API of the sla service: a ticket's clocks, each saying why it runs, pauses or stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import FastAPI, HTTPException, Query

from desk_contracts.inputs import quoted
from desk_platform.http import service_app
from sla.application.timers import Desks, clocks_of


def create_app(pool: asyncpg.Pool, desks: Desks, clock: Callable[[], datetime]) -> FastAPI:
    app = service_app("sla", pool)

    @app.get("/tickets/{ticket_id}/clocks")
    async def clocks(ticket_id: str) -> dict[str, Any]:
        async with pool.acquire() as conn:
            reading = await clocks_of(conn, desks, ticket_id, clock())
            timers = await conn.fetch(
                """SELECT kind, occurrence, fire_at, armed_version FROM timers
                   WHERE ticket_id = $1 AND fired_at IS NULL ORDER BY fire_at""",
                ticket_id,
            )
        if reading is None:
            raise HTTPException(404, f"no ticket {quoted(ticket_id)} known to the sla service")
        return {**asdict(reading), "pending_timers": [dict(t) for t in timers]}

    @app.get("/board")
    async def board(
        policy_id: Annotated[str, Query(min_length=1, max_length=100)],
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """A desk's open requests with running clocks, the most urgent first, with the business
        time left before the next breach (negative once breached)."""
        if policy_id not in desks.policies:
            raise HTTPException(404, f"no desk {quoted(policy_id)}")
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
