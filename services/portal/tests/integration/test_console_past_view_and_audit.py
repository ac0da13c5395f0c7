"""The console's past view of a request and its audit pages, in the portal on the real
PostgreSQL server, against stand-ins for workflow and sla that answer as theirs do and record
what they are asked: the instant typed in the person's time zone reaches workflow and sla as
the same instant in UTC, the page says it is a past view and offers no command, a bad instant
or one before the request existed shows the request as it is now with the reason; the audit of
a request and of a desk's period (its leads only) as pages and as CSV downloads."""

from __future__ import annotations

import html as html_text
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from portal_support import Browser
from service_support import service_store

from desk_contracts import directory as d
from desk_platform.identity import new_signing_key
from desk_policies.description import describe
from desk_policies.loader import load_policies
from portal.app import create_app
from portal.application import credentials
from portal.application.directory import record

pytestmark = pytest.mark.integration
POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
LEA, PAUL = "lea@desk.example", "paul@desk.example"
PASSWORD = "a-password-for-tests-123"
CREATED = "2026-03-02T14:00:00Z"
ROWS = [
    {"key": "SPT-1", "version": 1, "occurred_at": CREATED, "event": "TicketCreated",
     "actor_id": "anne@acme.example", "actor_role": "requester", "field": "status", "old": None,
     "new": "open", "reason": None},
    {"key": "SPT-1", "version": 2, "occurred_at": "2026-03-02T14:30:00Z",
     "event": "PriorityChanged", "actor_id": PAUL, "actor_role": "service_desk",
     "field": "priority", "old": "critical", "new": "high", "reason": "a workaround exists"},
]  # fmt: skip


def request_json(status: str, priority: str, version: int, **more: Any) -> dict[str, Any]:
    """SPT-1 as workflow's read tells it to the support side."""
    labels = {"open": "Open", "in_progress": "In progress"}
    return {
        "ticket_id": "id-1", "key": "SPT-1", "policy_id": "erp-vendor", "subject": "Paie",
        "description": "SwissDec", "request_type": "support", "priority": priority,
        "status": {"id": status, "label": labels[status],
                   "labels": {"fr": labels[status], "en": labels[status]},
                   "category": "open", "expected_actor": "service_desk"},
        "organisation_id": "acme", "requester_id": "anne@acme.example", "assignee_id": None,
        "participants": [], "links": [], "resolution_code": None, "version": version,
        "created_at": CREATED, "updated_at": CREATED, "muted": [], "attachments": [],
        "history": [{"version": 1, "type": "TicketCreated", "event_id": "e1",
                     "occurred_at": CREATED, "data": {"language": "fr", "priority": "critical",
                                                      "created_by": "anne@acme.example"}}],
        "history_total": 1, "history_more": False, **more,
    }  # fmt: skip


@dataclass
class Stand:
    """workflow and sla as the portal sees them: what they answer, what they were asked."""

    asked: list[httpx.Request] = field(default_factory=list)

    def params(self, host: str, path: str) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.asked if r.url.host == host and r.url.path == path]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request)
        path, params = request.url.path, request.url.params
        as_of = params.get("as_of")
        if request.url.host == "sla":
            clocks = {"sla_bound": True, "response": None, "resolution": None}
            return httpx.Response(200, json={**clocks, **({"as_of": as_of} if as_of else {})})
        if path == "/desks":
            return httpx.Response(
                200, json=[describe(p).model_dump(mode="json", by_alias=True)
                           for p in POLICIES.values()],
            )  # fmt: skip
        if path == "/requests/SPT-1":
            if as_of is None:
                return httpx.Response(
                    200, json=request_json("in_progress", "high", 3), headers={"ETag": '"3"'}
                )
            if as_of < CREATED.replace("Z", "+00:00"):
                return httpx.Response(404, json={"detail": "no request 'SPT-1' at then"})
            return httpx.Response(200, json=request_json("open", "critical", 1, as_of=as_of))
        if path == "/requests/SPT-1/audit":
            if params.get("format") == "csv":
                return httpx.Response(
                    200, text="key,version\r\nSPT-1,'=1\r\n",
                    headers={"content-type": "text/csv; charset=utf-8",
                             "content-disposition": 'attachment; filename="SPT-1-audit.csv"'},
                )  # fmt: skip
            return httpx.Response(200, json=ROWS)
        if path == "/desks/erp-vendor/audit":
            headers = {"X-More-Rows": "true"}
            if params.get("format") == "csv":
                return httpx.Response(
                    200, text="key\r\nSPT-1\r\n", headers={**headers, "content-disposition":
                    'attachment; filename="erp-vendor-audit-20260302-20260303.csv"'},
                )  # fmt: skip
            return httpx.Response(200, json=ROWS, headers=headers)
        return httpx.Response(404, json={"detail": "no such request"})


@dataclass
class World:
    stand: Stand
    transport: httpx.ASGITransport

    async def signed_in(self, email: str = LEA) -> Browser:
        browser = Browser(httpx.AsyncClient(transport=self.transport, base_url="http://portal"))
        answer = await browser.sign_in(email, PASSWORD)
        assert answer.status_code == 303, answer.text
        return browser


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    stand = Stand()
    async with service_store(database_url, "portal") as pool:
        async with pool.acquire() as conn:
            events: list[d.DirectoryEvent] = []
            people = ((LEA, "Léa Lead", "team_lead"), (PAUL, "Paul Agent", "service_desk"))
            for email, name, role in people:
                events += [
                    d.PersonInvited(occurred_at=NOW, by="t", email=email,
                                    profile=d.Profile(name=name, language="en",
                                                      time_zone="Europe/Zurich")),
                    d.RoleGranted(occurred_at=NOW, by="t", email=email, desk_id="erp-vendor",
                                  role=role),
                    d.PersonActivated(occurred_at=NOW, by="t", email=email),
                ]  # fmt: skip
            await record(conn, events)
            for email, _, _ in people:
                await credentials.set_password(conn, email, PASSWORD, NOW)
        client = httpx.AsyncClient(transport=httpx.MockTransport(stand.answer))

        async def unused(*_: object) -> None: ...

        app = create_app(
            pool, POLICIES, lambda: NOW, [new_signing_key()], unused, client=client,
            services={"workflow": "http://workflow", "sla": "http://sla"},
        )  # fmt: skip
        yield World(stand, httpx.ASGITransport(app=app))


async def test_a_request_is_shown_as_it_was_at_the_instant_typed(world: World) -> None:
    paul = await world.signed_in(PAUL)
    now = await paul.client.get("/console/requests/SPT-1?lang=en")
    assert now.status_code == 200, now.text
    assert '<label for="as-of">View as it was at …</label>' in now.text
    assert 'type="datetime-local" id="as-of" name="as_of"' in now.text
    assert 'id="past-view"' not in now.text and 'id="cmd-' in now.text

    past = await paul.client.get("/console/requests/SPT-1?lang=en&as_of=2026-03-02T15:20")
    assert past.status_code == 200, past.text
    html = past.text
    assert 'id="past-view"' in html and "A past view: this request as it was on" in html
    assert 'value="2026-03-02T15:20"' in html  # what was typed, kept
    assert 'id="status">Open<' in html and 'id="cmd-' not in html
    assert "no action can be taken" in html
    asked = "2026-03-02T14:20:00+00:00"  # 15:20 in Zurich, in UTC
    assert world.stand.params("workflow", "/requests/SPT-1")[-1]["as_of"] == asked
    assert world.stand.params("sla", "/requests/SPT-1/clocks")[-1] == {"as_of": asked}

    french = await paul.client.get("/console/requests/SPT-1?lang=fr&as_of=2026-03-02T15:20")
    shown = html_text.unescape(french.text)
    assert "Vue passée : cette demande telle qu'elle était le" in shown
    assert "Voir la demande telle qu'elle était le …" in shown


@pytest.mark.parametrize(
    ("typed", "status", "reason"),
    [
        ("2026-03-02T14:00", 404, "did not exist yet"),  # 13:00 UTC: before its creation
        ("yesterday", 422, "Give a date and time"),
        ("1812-06-24T10:00", 422, "Give a date and time"),
        ("2026-02-30T10:00", 422, "Give a date and time"),
    ],
)
async def test_an_instant_with_no_past_view_shows_the_request_now_with_why(
    world: World, typed: str, status: int, reason: str
) -> None:
    paul = await world.signed_in(PAUL)
    page = await paul.client.get("/console/requests/SPT-1", params={"as_of": typed, "lang": "en"})
    assert page.status_code == status, page.text
    assert reason in page.text and 'aria-invalid="true"' in page.text
    assert 'id="past-view"' not in page.text and 'id="status">In progress<' in page.text


async def test_a_request_s_audit_is_a_page_and_a_csv(world: World) -> None:
    paul = await world.signed_in(PAUL)
    page = await paul.client.get("/console/requests/SPT-1/audit?lang=en")
    assert page.status_code == 200, page.text
    assert 'href="/console/requests/SPT-1/audit.csv"' in page.text
    assert "a workaround exists" in page.text and "Blocking" in page.text  # critical, named
    download = await paul.client.get("/console/requests/SPT-1/audit.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == 'attachment; filename="SPT-1-audit.csv"'
    assert download.text == "key,version\r\nSPT-1,'=1\r\n"
    missing = await paul.client.get("/console/requests/SPT-9/audit")
    assert missing.status_code == 404


async def test_a_desk_s_audit_is_for_its_leads(world: World) -> None:
    lea = await world.signed_in(LEA)
    form = await lea.client.get("/console/audit/erp-vendor?lang=en")
    assert form.status_code == 200 and 'id="period-from"' in form.text
    period = {"from": "2026-03-02T00:00", "to": "2026-03-03T00:00", "lang": "en"}
    page = await lea.client.get("/console/audit/erp-vendor", params=period)
    assert page.status_code == 200, page.text
    assert 'id="audit-more"' in page.text and 'href="/console/requests/SPT-1"' in page.text
    assert world.stand.params("workflow", "/desks/erp-vendor/audit")[-1] == {
        "from": "2026-03-01T23:00:00+00:00", "to": "2026-03-02T23:00:00+00:00", "limit": "500",
    }  # fmt: skip
    download = await lea.client.get("/console/audit/erp-vendor/audit.csv", params=period)
    assert download.status_code == 200 and download.text == "key\r\nSPT-1\r\n"
    assert "erp-vendor-audit-20260302-20260303.csv" in download.headers["content-disposition"]
    reversed_ = await lea.client.get(
        "/console/audit/erp-vendor", params={**period, "to": "2026-03-01T00:00"}
    )
    assert reversed_.status_code == 422 and "not after the first" in reversed_.text
    paul = await world.signed_in(PAUL)
    assert (await paul.client.get("/console/audit/erp-vendor", params=period)).status_code == 403
    refused = await paul.client.get("/console/audit/erp-vendor/audit.csv", params=period)
    assert refused.status_code == 403
