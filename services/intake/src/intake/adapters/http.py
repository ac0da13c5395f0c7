"""HTTP API of intake: POST a request; invalid input gets 422 naming the field and the reason
(an unknown field included), a submitter who may not make it 403, an `Idempotency-Key` reused
for another content 409, each naming the field (a header by its name: `["header",
"idempotency-key"]`). `GET /desks` tells what each desk offers (`desk_policies.description`).

Who submits is the verified identity (`Authorization: Bearer`, a token the portal signed for
intake: 401 without one), never a plain header: the submitter is its subject, in the role it
grants at the submission's desk (`acting_role`; `X-Actor-Role` may choose among those roles, 403
for one it does not grant), filing into the organisation it carries when on the customer side.
A read-only token may not submit (403). A request made with an API token arrives by the `api`
channel, any other by the portal.

A request over an hourly flood limit (`intake.domain.flood`: per submitter, per requester's
mail domain, per desk) gets 429 with `Retry-After`, the seconds until the hour's window frees.
The satisfaction survey's API (`intake.adapters.survey`) needs no identity: its signed link
authorises it. Past capacity (`desk_platform.admission`: the outbox backlog or the submissions in
flight over their limits), a write gets 503 with `Retry-After` before its body is read.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, FastAPI, Header, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from desk_contracts.identity import Identity
from desk_contracts.tickets import Channel
from desk_eventstore.group_commit import GroupCommit
from desk_platform.admission import Admission, Shedding
from desk_platform.blobs import BlobStore
from desk_platform.edge import refusal
from desk_platform.http import (
    BODY_ANSWERS,
    IDENTITY_ANSWERS,
    INVALID,
    READ_ONLY,
    RETRY_AFTER_HEADER,
    RoleChoice,
    field_refusals,
    service_app,
)
from desk_platform.identity import Verifier, requires_identity
from desk_platform.logging import log_context
from desk_platform.testclocks import NotAClock, TestClocks, clock_for_new_request
from desk_policies.audience import NotYourRole, acting_role, identity_reads
from desk_policies.description import DeskDescription, desk_for
from desk_policies.directory import DirectorySource, current_directory, load_directory
from desk_policies.model import DeskPolicy
from intake.application.submit import Accepted, submit
from intake.domain.flood import RequestLimits
from intake.domain.submission import Refusal, Submission, Submitter

STATUS = {"invalid": 422, "forbidden": 403, "conflict": 409}  # flooded: 429
# refusals' fields that are headers, not body fields (`Authorization`: who the identity names)
HEADERS = ("Authorization", "X-Actor-Role", "Idempotency-Key")


class RequestAccepted(BaseModel):
    """A request recorded (201), or the one an `Idempotency-Key` already made (200): where to
    follow it in workflow."""

    ticket_id: str
    key: str
    created: bool
    event_id: str | None = Field(description="the TicketCreated event's id (None on a replay)")
    correlation_id: str
    status_url: str


class Flooded(BaseModel):
    """429: which hourly limit the request is over, and when to try again."""

    detail: str
    limit: str


ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": RequestAccepted, "description": "already made with this Idempotency-Key"},
    **field_refusals(
        {
            403: "the submitter (the verified identity, in the role it grants at the desk or "
            "the one X-Actor-Role chooses) may not make this request, or the token is read-only",
            409: "the Idempotency-Key was already used for another content",
            422: f"{INVALID}; an unknown desk, type or priority (the valid ones are listed), "
            "or a person the directory does not admit in the organisation",
        }
    ),
    429: {
        "model": Flooded,
        "description": "over an hourly flood limit",
        "headers": {"Retry-After": RETRY_AFTER_HEADER},
    },
    **IDENTITY_ANSWERS,
    **BODY_ANSWERS,
}


def refused(outcome: Refusal) -> JSONResponse:
    """The answer to a refused submission, naming its field (see module)."""
    if outcome.kind == "flooded":
        seconds = outcome.retry_after or 1
        return JSONResponse(
            status_code=429,
            headers={"Retry-After": str(seconds)},
            content={"detail": f"Too many requests: {outcome.reason}; try again in "
                     f"{seconds} s", "limit": outcome.field},
        )  # fmt: skip
    where = (
        ("header", outcome.field.lower()) if outcome.field in HEADERS else ("body", outcome.field)
    )
    content = {"detail": [refusal(where, outcome.reason, outcome.kind)]}
    return JSONResponse(status_code=STATUS[outcome.kind], content=content)


async def unknown_attachment(blobs: BlobStore | None, submission: Submission) -> Refusal | None:
    """Why an attachment of `submission` is refused: its file is not in the blob store, or not
    of the size it says (None: every one is there)."""
    for number, attachment in enumerate(submission.attachments, start=1):
        stored = None if blobs is None else await blobs.size(attachment.sha256)
        if stored is None:
            return Refusal("attachments", f"attachment {number}: no file stored with this sha256")
        if stored != attachment.size:
            return Refusal("attachments", f"attachment {number}: the file has {stored} bytes")
    return None


def create_app(
    pool: asyncpg.Pool,
    policies: dict[str, DeskPolicy],
    clock: Callable[[], datetime],
    workflow_url: str,
    routers: Sequence[APIRouter] = (),
    *,
    verifier: Verifier,
    directory: DirectorySource | None = None,
    limits: RequestLimits | None = None,
    blobs: BlobStore | None = None,
    admission: Admission | None = None,
    test_clocks: TestClocks | None = None,
) -> FastAPI:
    """Intake's app; `verifier` checks who calls (identity tokens for intake), `directory`
    admits the people a request names (a fixed one, or what gives the current one: asked at
    each request; the shipped one if None, for tests), `limits` bound the requests an hour (the
    settings' defaults unless given), `blobs` holds the files a request's attachments name
    (None: every attachment is refused as unknown), `admission` refuses writes past capacity
    (None: every one is admitted), `test_clocks` the clocks new requests may live on (None:
    test clocks are not enabled)."""
    people = directory if directory is not None else load_directory()
    hourly = limits or RequestLimits()
    identified = Depends(requires_identity(verifier))  # the verified caller
    app = service_app("intake", pool)
    commits = GroupCommit(pool)  # concurrent submissions share a transaction
    app.state.commits = commits  # its counts, for benchmarks and tests
    if admission is not None:  # outside the edge: a refused write's body is never read
        admission.waited = commits.waited  # it watches how long submissions wait for the store
        app.add_middleware(Shedding, admission=admission)
    for router in routers:  # e.g. the satisfaction survey's API (intake.adapters.survey)
        app.include_router(router)

    @app.get("/desks", responses=IDENTITY_ANSWERS)
    async def desks(identity: Identity = identified) -> list[DeskDescription]:
        """The desks: roles, statuses, transitions, request types, priorities, resolution
        codes... (what a portal form needs; see `desk_policies.description`).
        The desk's support side (a support role there) reads each desk whole, anyone else its
        customer side."""
        reads = identity_reads(identity, policies.values())
        return [desk_for(p, reads.get(p.id)) for p in policies.values()]

    @app.post("/requests", status_code=201, response_model=RequestAccepted, responses=ANSWERS)
    async def post_request(
        submission: Submission,
        response: Response,
        identity: Identity = identified,
        idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
        x_actor_role: RoleChoice = None,
        x_correlation_id: Annotated[str | None, Header(max_length=200)] = None,
    ) -> RequestAccepted | JSONResponse:
        """Record a request for a desk (201), or answer the one this `Idempotency-Key` made
        (200); a refusal names the field at fault."""
        if not identity.may("write"):
            return refused(Refusal("Authorization", READ_ONLY, "forbidden"))
        policy = policies.get(submission.policy_id)
        role = ""  # an unknown desk is refused by `submit`, naming the desks there are
        if policy is not None:
            try:
                role = acting_role(identity, policy, x_actor_role)
            except NotYourRole as error:
                where = "Authorization" if x_actor_role is None else "X-Actor-Role"
                return refused(Refusal(where, str(error), "forbidden"))
        if (missing := await unknown_attachment(blobs, submission)) is not None:
            return refused(missing)
        try:
            test_clock = await clock_for_new_request(
                test_clocks, submission.policy_id, submission.test_clock
            )
        except NotAClock as error:
            return refused(Refusal("test_clock", str(error)))
        correlation_id = x_correlation_id or str(uuid.uuid4())
        submitter = Submitter(identity.subject, role, identity.organisation)
        with log_context(correlation_id=correlation_id):
            outcome = await submit(
                commits,
                policies,
                current_directory(people),
                submission,
                submitter,
                channel=Channel.API if identity.via == "api_token" else Channel.PORTAL,
                now=clock(),
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
                limits=hourly,
                test_clock=test_clock,
            )
        if not isinstance(outcome, Accepted):
            return refused(outcome)
        if not outcome.created:
            response.status_code = 200
        response.headers["Location"] = f"{workflow_url}/requests/{outcome.ticket_id}"
        return RequestAccepted(
            ticket_id=outcome.ticket_id,
            key=outcome.key,
            created=outcome.created,
            event_id=outcome.event_id,
            correlation_id=correlation_id,
            status_url=f"{workflow_url}/requests/{outcome.ticket_id}",
        )

    return app
