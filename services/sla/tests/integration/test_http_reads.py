"""sla's reads through its real API on the real PostgreSQL server, with a real ticket: denied by
default (401 without a verified identity, 403 for an identity that reads nothing or a role it
does not grant), the board for the desk's support side only, a ticket's clocks by id or by key
for the support side and for customers of the request's own organisation (404 for anyone
else)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources

import httpx
import pytest
from identity_support import bearer, verifier
from published import published_envelopes
from service_support import service_store

from desk_contracts.tickets import Channel, TicketCreated
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_policies.calendars import shipped_calendars
from desk_policies.loader import load_policies
from sla.adapters.http import create_app
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks

pytestmark = pytest.mark.integration

DESKS = Desks(load_policies(), shipped_calendars())
MONDAY = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
STAFF = bearer("sd@desk.example", audience="sla", roles={"erp-vendor": ["service_desk"]})
ANNE = bearer("anne@acme.example", audience="sla", organisation="acme")
CARLA = bearer("carla@globex.example", audience="sla", organisation="globex")
NOBODY: dict[str, str] = {}
AGENT_ELSEWHERE = bearer("paul@desk.example", audience="sla", roles={"saas-desk": ["agent"]})
SYSTEM = bearer("service:timers", audience="sla", roles={"erp-vendor": ["system"]})  # reads nothing
NO_ONE = bearer("someone@desk.example", audience="sla")  # of no organisation, no role


def created() -> TicketCreated:
    return TicketCreated(
        ticket_id=str(uuid.uuid4()),
        occurred_at=MONDAY,
        key=f"SPT-{uuid.uuid4().int % 10**8}",
        policy_id="erp-vendor",
        request_type="support",
        priority="critical",
        subject="Paie bloquée",
        description="SwissDec refuse la transmission",
        organisation_id="acme",
        requester_id="anne@acme.example",
        created_by="anne@acme.example",
        channel=Channel.PORTAL,
    )


@pytest.fixture
async def ticket_and_sla(
    database_url: str,
) -> AsyncIterator[tuple[TicketCreated, httpx.AsyncClient]]:
    event = created()
    async with service_store(database_url, "sla") as pool:
        (envelope,) = published_envelopes([event], DESKS.policies[event.policy_id])
        async with pool.acquire() as conn, conn.transaction():
            await on_ticket_event(DESKS, lambda: MONDAY)(conn, envelope, event)
        app = create_app(pool, DESKS, lambda: MONDAY, verifier=verifier("sla"))
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sla") as http:
            yield event, http


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (NOBODY, 401),
        ({"Authorization": "Bearer "}, 401),
        ({**STAFF, "X-Actor-Role": "wizard"}, 403),
        ({**STAFF, "X-Actor-Role": "agent"}, 403),  # a role the identity does not grant
        (AGENT_ELSEWHERE, 403),  # staff of other desks, not of erp-vendor
        (SYSTEM, 403),  # reads nothing
        (NO_ONE, 403),
        (ANNE, 403),  # customers have no board
        (STAFF, 200),
        ({**STAFF, "X-Actor-Role": "service_desk"}, 200),
    ],
)
async def test_the_board_is_for_the_support_side_of_its_desk(
    ticket_and_sla: tuple[TicketCreated, httpx.AsyncClient], headers: dict[str, str], status: int
) -> None:
    event, http = ticket_and_sla
    answer = await http.get("/board", params={"policy_id": "erp-vendor"}, headers=headers)
    assert answer.status_code == status, answer.text
    if status == 200:
        assert [row["key"] for row in answer.json()] == [event.key]
        assert answer.json()[0]["organisation_id"] == "acme"
    else:
        assert event.key not in answer.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        (NOBODY, 401),
        ({**STAFF, "X-Actor-Role": "wizard"}, 403),
        (SYSTEM, 403),
        (NO_ONE, 403),
        (CARLA, 404),  # another organisation's request
        (AGENT_ELSEWHERE, 404),  # staff of another desk
        (ANNE, 200),
        ({**ANNE, "X-Actor-Role": "participant"}, 200),
        (STAFF, 200),
    ],
)
@pytest.mark.parametrize(
    "path", ["/tickets/{id}/clocks", "/requests/{key}/clocks", "/requests/{id}/clocks"]
)
async def test_a_requests_clocks_by_id_or_key_for_whom_may_see_the_request(
    ticket_and_sla: tuple[TicketCreated, httpx.AsyncClient],
    headers: dict[str, str],
    status: int,
    path: str,
) -> None:
    event, http = ticket_and_sla
    answer = await http.get(path.format(id=event.ticket_id, key=event.key), headers=headers)
    assert answer.status_code == status, answer.text
    if status == 404:
        assert answer.json()["detail"].startswith("no request ")
    if status != 200:
        return
    clocks = answer.json()
    assert clocks["ticket_id"] == event.ticket_id
    assert clocks["response"]["state"] == "running"
    if headers is STAFF:
        assert {t["kind"] for t in clocks["pending_timers"]} == {"sla_warning", "sla_breach"}
    else:
        assert "pending_timers" not in clocks  # the desk's own machinery


@pytest.mark.parametrize("path", ["/requests/SPT-404/clocks", f"/tickets/{uuid.uuid4()}/clocks"])
async def test_clocks_of_an_unknown_request_are_404_naming_it(
    ticket_and_sla: tuple[TicketCreated, httpx.AsyncClient], path: str
) -> None:
    _, http = ticket_and_sla
    answer = await http.get(path, headers=STAFF)
    assert answer.status_code == 404
    asked = path.split("/")[2]
    assert answer.json()["detail"] == f"no request {asked!r} known to the sla service"


@pytest.mark.parametrize(
    ("headers", "status"),
    [(NOBODY, 401), ({**STAFF, "X-Actor-Role": "janitor"}, 403), (NO_ONE, 403)],
)
async def test_who_reads_is_checked_before_any_request_is_looked_up(
    ticket_and_sla: tuple[TicketCreated, httpx.AsyncClient], headers: dict[str, str], status: int
) -> None:
    """The same answer for a known request and an unknown one: no probing of keys."""
    event, http = ticket_and_sla
    for key in (event.key, "SPT-404"):
        assert (await http.get(f"/requests/{key}/clocks", headers=headers)).status_code == status


async def test_board_rows_written_before_the_organisation_was_kept_take_it_from_the_history(
    database_url: str,
) -> None:
    migrations = migrations_in("sla", resources.files("sla") / "migrations")
    schema = f"t_sla_{uuid.uuid4().hex[:8]}"
    before = await open_store(database_url, schema, [m for m in migrations if m.version < 3])
    try:
        event = created()
        await before.execute(
            """INSERT INTO histories (ticket_id, version, event_id, event_type, schema_version,
                                      payload)
               VALUES ($1, 1, $2, 'TicketCreated', 1, $3)""",
            event.ticket_id,
            str(uuid.uuid4()),
            json.dumps(event.model_dump(mode="json")),
        )
        await before.execute(
            """INSERT INTO clock_board (ticket_id, key, policy_id, priority, status, version)
               VALUES ($1, $2, 'erp-vendor', 'critical', 'open', 1)""",
            event.ticket_id,
            event.key,
        )
        after = await open_store(database_url, schema, migrations)
        found = await after.fetchval("SELECT organisation_id FROM clock_board")
        await after.close()
        assert found == "acme"
    finally:
        await before.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await before.close()
