"""What every service's HTTP API starts with: its title, the edge that bounds and checks every
request (`desk_platform.edge`), and 503 with `Retry-After` while PostgreSQL or Kafka is out of
reach (a client retries, with the same `Idempotency-Key`, instead of reading a 500 as a
refusal). `/health`, `/ready` and `/metrics` are added by the runtime (desk_platform.readiness),
the same on every process."""

from __future__ import annotations

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from desk_eventstore.failures import TRANSIENT, describe, is_transient
from desk_platform.edge import DEFAULT_BODY_LIMIT, guard

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 2
OUTAGE_ANSWER = "PostgreSQL or Kafka out of reach: retry after `Retry-After` seconds"
# what a passing outage raises in a handler: the one classification (desk_eventstore.failures)
OUTAGES: tuple[type[Exception], ...] = tuple(
    kind for kind in (*TRANSIENT, KafkaError) if issubclass(kind, Exception)
)


async def _unavailable(request: Request, error: Exception) -> JSONResponse:
    if not is_transient(error):  # e.g. a record Kafka refuses for good: a bug, not an outage
        raise error
    log.warning("service_unavailable", path=request.url.path, error=describe(error))
    return JSONResponse(
        status_code=503,
        content={"detail": "the service cannot reach its database or broker: retry shortly"},
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def service_app(title: str, pool: asyncpg.Pool) -> FastAPI:
    """A service's FastAPI app with the edge and the outage answer installed."""
    app = FastAPI(
        title=f"Support desk: {title}",
        version="1",
        max_body_size=DEFAULT_BODY_LIMIT,
        responses={503: {"description": OUTAGE_ANSWER}},
    )
    guard(app)
    for outage in OUTAGES:
        app.add_exception_handler(outage, _unavailable)
    return app
