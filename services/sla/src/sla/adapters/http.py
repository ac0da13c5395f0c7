"""HTTP API of the sla service: a ticket's clocks, each saying why it runs, pauses or stopped."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, HTTPException

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
            raise HTTPException(404, f"no ticket {ticket_id!r} known to the sla service")
        return {**asdict(reading), "pending_timers": [dict(t) for t in timers]}

    return app
