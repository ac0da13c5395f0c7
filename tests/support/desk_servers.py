"""Test helpers: intake, workflow and sla served by uvicorn on free ports of this machine, each on
a fresh schema of the real PostgreSQL server, in a thread with its own event loop (so that
synchronous clients such as schemathesis and Hypothesis can call them as a client would). Each
app believes the identities signed with the session's test key (`identity_support`)."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uvicorn
from fastapi import FastAPI
from identity_support import verifier
from service_support import service_store

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.tickets import Channel, TicketCreated
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def submission(**changes: Any) -> dict[str, Any]:
    """A valid `POST /requests` body of saas-desk with every field filled, with `changes`."""
    return {
        "policy_id": "saas-desk",
        "request_type": "problem_report",
        "priority": "high",
        "subject": "Export fails",
        "description": "Error 500 on export",
        "organisation_id": "acme",
        "requester": "anne@acme.example",
        "participants": ["bruno@acme.example"],
        "product_version": "4.2",
        "company": "ACME SA",
        "contact": "Anne, +33 1 23 45 67 89",
        "error_message": "Traceback (most recent call last)",
        "language": "fr",
        **changes,
    }


def ticket_created(policy: str = "cloud-partner", request_type: str = "support") -> TicketCreated:
    """A request as intake publishes it, for workflow or sla to open."""
    return TicketCreated(
        ticket_id=str(uuid.uuid4()),
        occurred_at=NOW,
        key=f"SUP-{uuid.uuid4().int % 10**8}",
        policy_id=policy,
        request_type=request_type,
        priority="high",
        subject="Jira is slow",
        description="Since the upgrade",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


def envelope_of(event: Event, source: str = "/desk/intake") -> Envelope:
    """`event` as a record workflow consumes from `source` (intake, sla, the notifier)."""
    return Envelope(
        id=str(uuid.uuid4()),
        type=event.event_type,
        source=source,
        subject=event.ticket_id,
        time=NOW,
        data=event.model_dump(mode="json"),
    )


async def intake_app(pool: asyncpg.Pool) -> FastAPI:
    from intake.adapters.http import create_app
    from intake.adapters.survey import survey_router

    survey = survey_router(pool, POLICIES, "test-survey-secret", clock)
    return create_app(
        pool, POLICIES, clock, "http://workflow", routers=[survey], verifier=verifier("intake")
    )


async def open_in_workflow(pool: asyncpg.Pool, event: TicketCreated) -> None:
    """Workflow opens the ticket's stream as when it consumes intake's event."""
    from workflow.adapters.kafka import on_command

    handle = on_command(POLICIES, clock)
    async with pool.acquire() as conn, conn.transaction():
        await handle(conn, envelope_of(event), event)


async def workflow_app(pool: asyncpg.Pool) -> FastAPI:
    from workflow.adapters.http import create_app

    return create_app(pool, POLICIES, clock, verifier=verifier("workflow"))


async def sla_app(pool: asyncpg.Pool) -> FastAPI:
    from sla.adapters.http import create_app
    from sla.application.timers import Desks

    return create_app(pool, Desks(POLICIES, shipped_calendars()), clock, verifier=verifier("sla"))


@dataclass(frozen=True)
class Served:
    """A service listening at `url`; `ticket` is a request key it knows (or None)."""

    url: str
    ticket: str | None


@contextmanager
def serving(
    database_url: str,
    service: str,
    make_app: Callable[[asyncpg.Pool], Awaitable[FastAPI]],
    ticket: TicketCreated | None = None,
) -> Iterator[Served]:
    """`service`'s app (with `ticket` opened in workflow first) served until the block ends."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()
    holder: dict[str, uvicorn.Server] = {}
    failure: list[BaseException] = []

    async def main() -> None:
        async with service_store(database_url, service) as pool:
            if ticket is not None:
                await open_in_workflow(pool, ticket)
            config = uvicorn.Config(
                await make_app(pool), log_level="warning", lifespan="off", access_log=False
            )
            server = uvicorn.Server(config)
            holder["server"] = server
            ready.set()
            await server.serve(sockets=[sock])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # reported to the test below
            failure.append(error)
            ready.set()

    thread = threading.Thread(target=run, name=f"serve-{service}", daemon=True)
    thread.start()
    ready.wait(30)
    server = holder.get("server")
    for _ in range(300):
        if failure or (server is not None and server.started):
            break
        threading.Event().wait(0.05)
    if failure:
        raise RuntimeError(f"{service} did not start") from failure[0]
    assert server is not None and server.started, f"{service} did not start in time"
    try:
        yield Served(f"http://127.0.0.1:{port}", ticket.key if ticket else None)
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
