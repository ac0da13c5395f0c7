"""HTTP API of intake: POST a request; invalid input gets 422 naming the field and the reason.

A request over an hourly flood limit (`intake.domain.flood`: per submitter, per requester's
mail domain, per desk) gets 429 with `Retry-After`, the seconds until the hour's window frees.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, FastAPI, Header, Response
from fastapi.responses import JSONResponse

from desk_contracts.tickets import Channel
from desk_platform.http import service_app
from desk_platform.logging import log_context
from desk_policies.directory import Directory, load_directory
from desk_policies.model import DeskPolicy
from intake.application.submit import Accepted, submit
from intake.domain.flood import RequestLimits
from intake.domain.submission import Submission, Submitter

STATUS = {"invalid": 422, "forbidden": 403, "conflict": 409}  # flooded: 429


def create_app(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    clock: Callable[[], datetime],
    workflow_url: str,
    routers: Sequence[APIRouter] = (),
    *,
    directory: Directory | None = None,
    limits: RequestLimits | None = None,
) -> FastAPI:
    """Intake's app; `directory` admits the people a request names (the shipped one if None),
    `limits` bound the requests an hour (the settings' defaults unless given)."""
    people = directory if directory is not None else load_directory()
    hourly = limits or RequestLimits()
    app = service_app("intake", pool)
    for router in routers:  # e.g. the satisfaction survey's pages (intake.adapters.survey)
        app.include_router(router)

    @app.get("/desks")
    async def desks() -> list[dict[str, object]]:
        """The desks, their request types and priorities (what a portal form needs)."""
        return [
            {
                "id": p.id,
                "name": p.name,
                "request_types": [
                    {"id": t.id, "prefix": t.prefix, "label": t.labels.en, "creators": t.creators}
                    for t in p.request_types
                ],
                "priorities": [q.id for q in p.priorities],
            }
            for p in policies.values()
        ]

    @app.post(
        "/requests",
        status_code=201,
        responses={429: {"description": "over an hourly flood limit (see Retry-After)"}},
    )
    async def post_request(
        submission: Submission,
        response: Response,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
        x_actor: Annotated[str | None, Header(max_length=320)] = None,
        x_actor_role: Annotated[str, Header(max_length=64)] = "requester",
        x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> object:
        correlation_id = x_correlation_id or str(uuid.uuid4())
        submitter = Submitter(x_actor or submission.requester, x_actor_role)
        with log_context(correlation_id=correlation_id):
            outcome = await submit(
                pool,
                policies,
                people,
                submission,
                submitter,
                channel=Channel.API if x_actor_role == "api" else Channel.PORTAL,
                now=clock(),
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
                limits=hourly,
            )
        if not isinstance(outcome, Accepted) and outcome.kind == "flooded":
            seconds = outcome.retry_after or 1
            return JSONResponse(
                status_code=429,
                headers={"Retry-After": str(seconds)},
                content={"detail": f"Too many requests: {outcome.reason}; try again in "
                         f"{seconds} s", "limit": outcome.field},
            )  # fmt: skip
        if not isinstance(outcome, Accepted):
            return JSONResponse(
                status_code=STATUS[outcome.kind],
                content={
                    "detail": [
                        {
                            "loc": ["body", outcome.field],
                            "msg": outcome.reason,
                            "type": outcome.kind,
                        }
                    ]
                },
            )
        if not outcome.created:
            response.status_code = 200
        response.headers["Location"] = f"{workflow_url}/requests/{outcome.ticket_id}"
        return {
            "ticket_id": outcome.ticket_id,
            "key": outcome.key,
            "created": outcome.created,
            "event_id": outcome.event_id,
            "correlation_id": correlation_id,
            "status_url": f"{workflow_url}/requests/{outcome.ticket_id}",
        }

    return app
