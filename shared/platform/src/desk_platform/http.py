"""What every service's HTTP API starts with: its title, the edge that bounds and checks every
request (`desk_platform.edge`) and a health check that touches the database (a load balancer
or an operator sees at once when a replica lost PostgreSQL)."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from desk_platform.edge import DEFAULT_BODY_LIMIT, guard


def service_app(title: str, pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI(title=f"Support desk: {title}", version="1", max_body_size=DEFAULT_BODY_LIMIT)
    guard(app)

    @app.get("/health")
    async def health() -> dict[str, str]:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        return {"status": "ok"}

    return app
