"""What every service's HTTP API starts with: its title, the edge that bounds and checks every
request (`desk_platform.edge`), and 503 with `Retry-After` while PostgreSQL or Kafka is out of
reach (a client retries, with the same `Idempotency-Key`, instead of reading a 500 as a
refusal), as when it is past capacity (`desk_platform.admission`, where a service installs it).
`/health`, `/ready` and `/metrics` are added by the runtime (desk_platform.readiness), the same
on every process.

Every answer is in the OpenAPI document, with its body. A refusal has one of two shapes:
`Problem` (`detail`, a sentence) or FastAPI's `HTTPValidationError` (`detail`, the fields at
fault, each with where, why and which kind: every 422). The answers any route may give (the
edge's 422, the outage's 503, in JSON) are added to every operation here, whatever the route's
own media type (a form's HTML page); a route with a JSON body adds `BODY_ANSWERS` (413, 408), a
route that needs a verified identity `IDENTITY_ANSWERS` (401); each route documents its own
refusals (`refusals`, `field_refusals`). Who calls is never read from a plain header: it is the
verified identity (`desk_platform.identity.requires_identity`); `X-Actor-Role` (`RoleChoice`) is
only a choice among the roles that identity grants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.openapi.utils import (
    validation_error_definition,
    validation_error_response_definition,
)
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from desk_contracts.identity import Identity
from desk_eventstore.failures import TRANSIENT, describe, is_transient
from desk_platform.edge import DEFAULT_BODY_LIMIT, guard

log = structlog.get_logger(__name__)

RETRY_AFTER_SECONDS = 2
OUTAGE_ANSWER = (
    "PostgreSQL or Kafka out of reach, or the service past capacity (a write, see "
    "desk_platform.admission): retry after `Retry-After` seconds"
)
# what a passing outage raises in a handler: the one classification (desk_eventstore.failures)
OUTAGES: tuple[type[Exception], ...] = tuple(
    kind for kind in (*TRANSIENT, KafkaError) if issubclass(kind, Exception)
)


SCHEMAS = "#/components/schemas/"
INVALID = "invalid input: `detail` names each field refused and why (unknown fields included)"


class Problem(BaseModel):
    """A refusal: why, in a sentence a person understands."""

    detail: str = Field(description="why the request was refused")


# who calls is a verified identity (`desk_platform.identity`); a caller may choose, among the
# roles it grants them at a desk, the one they act in
ROLE_CHOICE = (
    "optional: the role to act or read in, among those your identity grants at the desk "
    "(403 when it grants no such role); without it, the roles your identity grants decide"
)
RoleChoice = Annotated[str | None, Header(max_length=64, description=ROLE_CHOICE)]
READ_ONLY = "read-only token: it may read, not write"


def refuse_read_only(identity: Identity) -> None:
    """403 unless `identity` may write (a command, a new request): an API token may be
    read-only."""
    if not identity.may("write"):
        raise HTTPException(403, READ_ONLY)


def refusals(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's refusals that say why in a sentence (`Problem`)."""
    return {
        status: {"model": Problem, "description": text} for status, text in descriptions.items()
    }


def field_refusals(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` of a route's refusals that name the fields at fault, in the
    shape of a 422 (`HTTPValidationError`)."""
    content = {"application/json": {"schema": {"$ref": f"{SCHEMAS}HTTPValidationError"}}}
    return {
        status: {"description": text, "content": content} for status, text in descriptions.items()
    }


# the answer of every route that needs a verified identity, beyond its own
IDENTITY_ANSWERS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": Problem,
        "description": "no verified identity: no `Authorization: Bearer` token, or one that is "
        "expired, not signed by the portal's keys, or for another service",
        "headers": {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    },
}

# the answers of a route that reads a JSON body, beyond its own
BODY_ANSWERS: dict[int | str, dict[str, Any]] = {
    **field_refusals({408: "the body did not arrive in time"}),
    413: {
        "model": Problem,
        "description": "the body is larger than the route accepts (text), or the event it "
        "would make is larger than an event may be",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    },
}

RETRY_AFTER_HEADER = {"description": "seconds to wait", "schema": {"type": "integer"}}
# status: (schema, description) of what any route may answer, in JSON
EVERY_ROUTE: dict[str, tuple[str, str]] = {
    "422": ("HTTPValidationError", INVALID),
    "503": ("Problem", OUTAGE_ANSWER),
}


def _document_every_route(app: FastAPI) -> None:
    """Make `app`'s OpenAPI document list, on every operation, the JSON answers of
    `EVERY_ROUTE` beside the route's own content for the status (e.g. a form's HTML page)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ValidationError", validation_error_definition)
        schemas.setdefault("HTTPValidationError", validation_error_response_definition)
        schemas.setdefault("Problem", Problem.model_json_schema())
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                for status, (schema, text) in EVERY_ROUTE.items():
                    answer = operation.setdefault("responses", {}).setdefault(status, {})
                    answer.setdefault("description", text)
                    answer.setdefault("content", {}).setdefault(
                        "application/json", {"schema": {"$ref": SCHEMAS + schema}}
                    )
                outage = operation["responses"]["503"]
                outage.setdefault("headers", {}).setdefault("Retry-After", RETRY_AFTER_HEADER)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


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
    )
    _document_every_route(app)
    guard(app)
    for outage in OUTAGES:
        app.add_exception_handler(outage, _unavailable)
    return app
