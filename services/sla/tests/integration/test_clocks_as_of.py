"""A request's clocks as they stood at an instant, through sla's real API on the real
PostgreSQL server: an erp-vendor request (Geneva office hours) created on a Monday at 15:00
there, its priority lowered at 15:30 and work started at 16:00, read at instants between those
events, exactly at one and before the creation, against what was computed here by hand; with
the same rules of who reads as the clocks of now."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from identity_support import bearer, verifier
from published import published_envelopes
from pydantic import TypeAdapter
from service_support import service_store

from desk_contracts.tickets import Channel, PriorityChanged, TicketCreated, WorkStarted
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 15:00 in Geneva, within office hours
MINUTE = timedelta(minutes=1)
NOW = T0 + 3 * 60 * MINUTE  # sla's clock while it is asked
STAFF = bearer("sd@desk.example", audience="sla", roles={"erp-vendor": ["service_desk"]})
ANNE = bearer("anne@acme.example", audience="sla", organisation="acme")
CARLA = bearer("carla@globex.example", audience="sla", organisation="globex")


def story() -> list[Any]:
    """Created critical at T0, lowered to high at T0+30 min, work started at T0+60 min."""
    ticket = str(uuid.uuid4())
    created = TicketCreated(
        ticket_id=ticket, occurred_at=T0, key=f"SPT-{uuid.uuid4().int % 10**8}",
        policy_id="erp-vendor", request_type="support", priority="critical",
        subject="Paie bloquée", description="SwissDec refuse la transmission",
        organisation_id="acme", requester_id="anne@acme.example",
        created_by="anne@acme.example", channel=Channel.PORTAL,
    )  # fmt: skip
    lowered = PriorityChanged(
        ticket_id=ticket, occurred_at=T0 + 30 * MINUTE, actor_id="fd@desk.example",
        actor_role="front_desk", from_priority="critical", to_priority="high",
        reason="a workaround exists",
    )  # fmt: skip
    started = WorkStarted(
        ticket_id=ticket, occurred_at=T0 + 60 * MINUTE, actor_id="sd@desk.example",
        actor_role="service_desk", from_status="open", to_status="in_progress",
    )  # fmt: skip
    return [created, lowered, started]


@pytest.fixture
async def known(database_url: str) -> AsyncIterator[tuple[TicketCreated, httpx.AsyncClient]]:
    events = story()
    async with service_store(database_url, "sla") as pool:
        envelopes = published_envelopes(events, DESKS.policies["erp-vendor"])
        handle = on_ticket_event(DESKS, lambda: NOW)
        for envelope, event in zip(envelopes, events, strict=True):
            async with pool.acquire() as conn, conn.transaction():
                await handle(conn, envelope, event)
        app = create_app(pool, DESKS, lambda: NOW, verifier=verifier("sla"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sla") as http:
            yield events[0], http


def seconds(duration: str) -> float:
    """A duration as the API tells it (ISO 8601, as pydantic writes it), in seconds."""
    return TypeAdapter(timedelta).validate_python(duration).total_seconds()


async def test_the_clocks_read_as_they_stood_at_each_instant(
    known: tuple[TicketCreated, httpx.AsyncClient],
) -> None:
    created, http = known
    path = f"/requests/{created.key}/clocks"

    async def at(instant: datetime, headers: dict[str, str] = STAFF) -> httpx.Response:
        return await http.get(path, params={"as_of": instant.isoformat()}, headers=headers)

    assert (await at(T0 - timedelta(seconds=1))).status_code == 404  # not created yet

    early = (await at(T0 + 20 * MINUTE)).json()
    assert (early["version"], early["status"], early["priority"]) == (1, "open", "critical")
    assert early["response"]["state"] == "running"
    assert seconds(early["response"]["elapsed"]) == 20 * 60
    assert early["resolution"]["state"] == "not started"
    assert "pending_timers" not in early  # the present's, not the past's
    assert early["as_of"] == "2026-03-02T14:20:00Z"

    lowered = (await at(T0 + 30 * MINUTE)).json()  # exactly when the priority was lowered
    assert (lowered["version"], lowered["priority"]) == (2, "high")
    assert lowered["response"]["priority"] == "high"
    assert seconds(lowered["response"]["elapsed"]) == 30 * 60

    started = (await at(T0 + 90 * MINUTE)).json()
    assert (started["version"], started["status"]) == (3, "in_progress")
    response, resolution = started["response"], started["resolution"]
    assert response["state"] == "stopped"
    assert response["reason"] == "stopped: first response (In progress) at 2026-03-02 16:00 CET"
    assert seconds(response["elapsed"]) == 60 * 60
    assert resolution["state"] == "running"
    assert seconds(resolution["elapsed"]) == 30 * 60

    future = (await at(NOW + timedelta(days=400))).json()  # still to come: as it is now
    now = (await http.get(path, headers=STAFF)).json()
    assert future["as_of"] == "2026-03-02T17:00:00Z"
    assert seconds(future["resolution"]["elapsed"]) == seconds(now["resolution"]["elapsed"])

    anne = await at(T0 + 20 * MINUTE, ANNE)
    assert anne.status_code == 200 and anne.json()["response"]["state"] == "running"
    assert (await at(T0 + 20 * MINUTE, CARLA)).status_code == 404  # another organisation
    by_id = await http.get(
        f"/tickets/{created.ticket_id}/clocks", params={"as_of": "2026-03-02T15:20:00+01:00"},
        headers=STAFF,
    )  # fmt: skip
    assert by_id.json()["version"] == 1


@pytest.mark.parametrize(
    "as_of", ["2026-03-02T15:20:00", "soon", "1812-01-01T00:00:00Z", "2026-13-02T15:20:00Z"]
)
async def test_an_instant_that_is_not_one_is_refused(
    known: tuple[TicketCreated, httpx.AsyncClient], as_of: str
) -> None:
    created, http = known
    answer = await http.get(
        f"/requests/{created.key}/clocks", params={"as_of": as_of}, headers=STAFF
    )
    assert answer.status_code == 422
    assert as_of not in answer.text
