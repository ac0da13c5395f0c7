"""What every service's HTTP API starts with: its title. `/health`, `/ready` and `/metrics` are
added to it by the runtime (desk_platform.readiness), the same on every process."""

from __future__ import annotations

import asyncpg
from fastapi import FastAPI


def service_app(title: str, pool: asyncpg.Pool) -> FastAPI:
    app = FastAPI(title=f"Support desk: {title}", version="1")
    return app
