"""What every service's HTTP API starts with: its title and the edge that bounds and checks
every request (`desk_platform.edge`). `/health`, `/ready` and `/metrics` are added to it by the
runtime (desk_platform.readiness), the same on every process."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI

from desk_platform.edge import DEFAULT_BODY_LIMIT, guard


def service_app(title: str, pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI(title=f"Support desk: {title}", version="1", max_body_size=DEFAULT_BODY_LIMIT)
    guard(app)
    return app
