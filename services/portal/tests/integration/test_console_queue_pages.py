"""The console's queue pages in the portal, on the real PostgreSQL server, against stand-ins for
sla and workflow that answer as theirs do and record what they are asked: the queues of a desk
and what sla is asked for each, the rows with their clocks and time left, the live region (204
while nothing changed, the checked boxes kept when it changed), and bulk actions: each request
through workflow's command in the role the desk allows from its status, refusals reported while
the others go on, a bad selection a 4xx page (never a 500)."""

from __future__ import annotations

import json
import re
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
NOW = datetime(2026, 3, 2, 14, 50, tzinfo=UTC)
LEA, PAUL, ANNE = "lea@desk.example", "paul@desk.example", "anne@acme.example"
PASSWORD = "a-password-for-tests-123"
REQUESTS = {  # key -> (desk, status, priority)
    "SPT-1": ("erp-vendor", "open", "high"),
    "SPT-2": ("erp-vendor", "in_progress", "high"),
    "SPT-3": ("erp-vendor", "closed", "medium"),
    "SUP-9": ("cloud-partner", "submitted", "low"),
}


def row(key: str, left: int | None, **changed: Any) -> dict[str, Any]:
    _, status, priority = REQUESTS[key]
    return {
        "key": key, "ticket_id": f"id-{key}", "subject": f"Subject of {key}", "status": status,
        "priority": priority, "category": "open", "expected_actor": "front_desk",
        "assignee_id": None, "group_id": None, "requester_id": ANNE, "organisation_id": "acme",
        "created_at": "2026-03-02T14:00:00Z", "updated_at": "2026-03-02T14:00:00Z",
        "version": 1,
        "response": {"state": "running", "reason": "running: Open since 2026-03-02 15:00 CET",
                     "due": "2026-03-02T15:00:00Z", "warning": "2026-03-02T14:45:00Z"},
        "resolution": {"state": "not started", "reason": "not started: waiting",
                       "due": None, "warning": None},
        "next_due": "2026-03-02T15:00:00Z", "next_warning": "2026-03-02T14:45:00Z",
        "business_time_left_s": left, **changed,
    }  # fmt: skip


@dataclass
class Stand:
    """sla and workflow as the portal sees them: what they answer, what they were asked."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    asked: list[httpx.Request] = field(default_factory=list)

    def commands(self) -> list[tuple[str, dict[str, Any], str | None]]:
        return [
            (r.url.path, json.loads(r.content), r.headers.get("x-actor-role"))
            for r in self.asked
            if r.method == "POST"
        ]

    def sla_params(self) -> list[list[tuple[str, str]]]:
        return [
            list(r.url.params.multi_items())
            for r in self.asked
            if r.url.host == "sla" and r.url.path == "/queue"
        ]

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.asked.append(request)
        path = request.url.path
        if request.url.host == "sla":
            if path == "/queue/counts":
                return httpx.Response(200, json={
                    "active": len(self.rows), "waiting": 0, "unassigned": 2, "assigned": 1,
                    "breached": 0, "soon": 1, "by_status": {"open": 2, "qualified": 1},
                    "by_expected_actor": {"front_desk": 2},
                })  # fmt: skip
            return httpx.Response(
                200, json=self.rows, headers={"X-Total-Count": str(len(self.rows))}
            )
        if path == "/desks":
            return httpx.Response(
                200, json=[describe(p).model_dump(mode="json", by_alias=True)
                           for p in POLICIES.values()],
            )  # fmt: skip
        key = path.split("/")[2]
        if key not in REQUESTS:
            return httpx.Response(404, json={"detail": f"no request {key!r}"})
        desk, status, priority = REQUESTS[key]
        if request.method == "GET":
            return httpx.Response(
                200,
                json={"key": key, "policy_id": desk, "priority": priority,
                      "status": {"id": status, "category": "open"}},
                headers={"ETag": '"3"'},
            )  # fmt: skip
        if status == "closed":
            return httpx.Response(409, json={"detail": "assign is not allowed from Closed"})
        if path.endswith("/close"):
            refused = [{"loc": ["body", "resolution_code"], "msg": "unknown code", "type": "x"}]
            return httpx.Response(422, json={"detail": refused})
        return httpx.Response(200, json={"key": key, "status": status, "version": 4})


@dataclass
class World:
    stand: Stand
    transport: httpx.ASGITransport

    async def signed_in(self, email: str = LEA) -> Browser:
        browser = Browser(httpx.AsyncClient(transport=self.transport, base_url="http://portal"))
        answer = await browser.sign_in(email, PASSWORD)
        assert answer.status_code == 303, answer.text
        return browser


async def bulk(browser: Browser, **fields: Any) -> httpx.Response:
    """The queue page's form sent to the bulk action with `fields` (lists for many values)."""
    token = await browser.form_token("/console/queues/erp-vendor")
    data = {**fields, "csrf": token}
    return await browser.client.post("/console/queues/erp-vendor/bulk?lang=en", data=data)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    stand = Stand([row("SPT-1", 600), row("SPT-2", -3900, assignee_id=PAUL)])
    async with service_store(database_url, "portal") as pool:
        async with pool.acquire() as conn:
            events: list[d.DirectoryEvent] = [
                d.OrganisationRecorded(occurred_at=NOW, by="t", organisation_id="acme",
                                       name="ACME", domains=("acme.example",)),
                d.PersonInvited(occurred_at=NOW, by="t", email=ANNE, organisation_id="acme",
                                profile=d.Profile(name="Anne", language="fr")),
            ]  # fmt: skip
            people = ((LEA, "Léa Lead", "team_lead"), (PAUL, "Paul Agent", "service_desk"))
            for email, name, role in people:
                events += [
                    d.PersonInvited(occurred_at=NOW, by="t", email=email,
                                    profile=d.Profile(name=name, language="en")),
                    d.RoleGranted(occurred_at=NOW, by="t", email=email, desk_id="erp-vendor",
                                  role=role),
                ]  # fmt: skip
            for email in (LEA, PAUL, ANNE):
                events.append(d.PersonActivated(occurred_at=NOW, by="t", email=email))
            await record(conn, events)
            for email in (LEA, PAUL, ANNE):
                await credentials.set_password(conn, email, PASSWORD, NOW)
        client = httpx.AsyncClient(transport=httpx.MockTransport(stand.answer))

        async def unused(*_: object) -> None: ...

        app = create_app(
            pool, POLICIES, lambda: NOW, [new_signing_key()], unused, client=client,
            services={"workflow": "http://workflow", "sla": "http://sla"},
        )  # fmt: skip
        yield World(stand, httpx.ASGITransport(app=app))


async def test_the_queue_page_shows_the_desks_queues_and_the_rows_clocks(world: World) -> None:
    lea = await world.signed_in()
    page = await lea.client.get("/console/queues/erp-vendor?lang=en")
    assert page.status_code == 200, page.text
    html = page.text
    assert re.search(r'<a id="queue-link-mine" data-queue="mine"[^>]*aria-current="page"', html)
    for queue in ("new", "to_assign", "unassigned", "actor-daily", "actor-rnd", "soon"):
        assert f'data-queue="{queue}"' in html, queue
    assert 'New <span class="count">(2)</span>' in html
    assert 'id="queue-table"' in html and 'tr data-key="SPT-1"' in html
    assert 'href="/console/requests/SPT-1"' in html
    assert "10 min left" in html and "breached 1 h 5 min ago" in html
    assert "Response</span>: running" in html and "(Open)" in html
    assert "Paul Agent" in html  # SPT-2's assignee, by name
    assert '<option value="paul@desk.example">Paul Agent (paul@desk.example)</option>' in html
    assert 'hx-get="/console/queues/erp-vendor/live?queue=mine&amp;page=1&amp;since=' in html
    assert world.stand.sla_params()[-1] == [
        ("policy_id", "erp-vendor"), ("limit", "25"), ("offset", "0"), ("assignee", LEA),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("queue", "params"),
    [
        ("new", [("status", "open")]),
        ("to_assign", [("status", "qualified")]),
        ("unassigned", [("unassigned", "true")]),
        ("actor-rnd", [("expected_actor", "rnd")]),
        ("waiting", [("category", "waiting")]),
        ("breached", [("due", "breached")]),
        ("no-such-queue", [("assignee", LEA)]),  # the default: Léa acts nowhere, hers
    ],
)
async def test_each_queue_asks_sla_for_its_requests(
    world: World, queue: str, params: list[tuple[str, str]]
) -> None:
    lea = await world.signed_in()
    page = await lea.client.get(f"/console/queues/erp-vendor?queue={queue}&page=2")
    assert page.status_code == 200
    asked = world.stand.sla_params()[-1]
    assert asked[:3] == [("policy_id", "erp-vendor"), ("limit", "25"), ("offset", "25")]
    assert asked[3:] == params


@pytest.mark.parametrize("path", ["/console/queues/cloud-partner", "/console/queues/x" + "y" * 300])
async def test_a_desk_the_person_does_not_work_at_is_a_404_page(world: World, path: str) -> None:
    lea = await world.signed_in()
    page = await lea.client.get(f"{path}?lang=en")
    assert page.status_code == 404 and "You do not work at this desk" in page.text


async def test_a_customer_is_refused_and_a_visitor_signs_in_first(world: World) -> None:
    anne = await world.signed_in(ANNE)
    assert (await anne.client.get("/console/queues/erp-vendor")).status_code == 403
    visitor = Browser(httpx.AsyncClient(transport=world.transport, base_url="http://portal"))
    answer = await visitor.client.get("/console/queues/erp-vendor")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/console/queues/erp-vendor"


async def test_the_live_region_answers_204_until_the_queue_changes_keeping_checked_boxes(
    world: World,
) -> None:
    lea = await world.signed_in()
    page = (await lea.client.get("/console/queues/erp-vendor?queue=new&lang=en")).text
    found = re.search(r'hx-get="([^"]+)"', page)
    assert found
    live = found.group(1).replace("&amp;", "&")
    headers = {"HX-Request": "true"}
    same = await lea.client.get(live, headers=headers)
    assert same.status_code == 204
    world.stand.rows.insert(0, row("SPT-3", 60))
    changed = await lea.client.get(f"{live}&keys=SPT-1&keys=SPT-3&keys=SPT-77", headers=headers)
    assert changed.status_code == 200
    html = changed.text
    assert html.startswith('<div id="queue-live"') and "<html" not in html
    assert 'tr data-key="SPT-3"' in html
    assert re.search(r'id="pick-SPT-1" name="keys" value="SPT-1" checked', html)
    assert not re.search(r'id="pick-SPT-2" name="keys" value="SPT-2" checked', html)
    assert 'id="queue-kept"' in html and 'value="SPT-77" checked' in html  # still selected
    assert 'id="queue-nav"' in html and 'hx-swap-oob="true"' in html
    bad = await lea.client.get(f"{live}&keys=x%00y&page=%C2%B2", headers=headers)
    assert bad.status_code in (200, 204, 400, 422)


async def test_a_bulk_assignment_goes_on_past_a_refusal(world: World) -> None:
    lea = await world.signed_in()
    keys = ["SPT-1", "SPT-3", "SPT-2", "SUP-9", "SPT-404"]
    sent = await bulk(lea, keys=keys, action="assign", assignee_id=PAUL, queue="new", page="1")
    assert sent.status_code == 200, sent.text
    html = sent.text
    results = re.findall(r'<li data-key="([^"]+)" class="(done|refused)"', html)
    assert results == [("SPT-1", "done"), ("SPT-3", "refused"), ("SPT-2", "done"),
                       ("SUP-9", "refused"), ("SPT-404", "refused")]  # fmt: skip
    assert "assign is not allowed from Closed" in html
    assert "not of this desk" in html and "no such request" in html
    assert "2 done, 3 refused" in html
    assert 'href="/console/queues/erp-vendor?queue=new&amp;page=1"' in html
    assigned = [c for c in world.stand.commands() if c[0].endswith("/assign")]
    assert assigned == [
        ("/requests/SPT-1/assign", {"assignee_id": PAUL}, "team_lead"),
        ("/requests/SPT-3/assign", {"assignee_id": PAUL}, "team_lead"),  # workflow says why
        ("/requests/SPT-2/assign", {"assignee_id": PAUL}, "team_lead"),
    ]
    conditional = [r.headers.get("if-match") for r in world.stand.asked if r.method == "POST"]
    assert set(conditional) == {'"3"'}


async def test_a_bulk_priority_change_asks_a_reason_to_lower(world: World) -> None:
    lea = await world.signed_in()
    sent = await bulk(lea, keys=["SPT-1", "SPT-2"], action="priority", priority="low")
    assert sent.status_code == 200
    assert sent.text.count('class="refused"') == 2 and "needs a reason" in sent.text
    assert world.stand.commands() == []
    reason = "Contournement trouvé"
    await bulk(lea, keys=["SPT-1"], action="priority", priority="low", reason=reason)
    assert world.stand.commands() == [
        ("/requests/SPT-1/change-priority", {"priority": "low", "reason": "Contournement trouvé"},
         "team_lead"),
    ]  # fmt: skip


async def test_a_bulk_close_reports_workflows_field_refusal(world: World) -> None:
    lea = await world.signed_in()
    sent = await bulk(lea, keys="SPT-1", action="close", resolution_code="handled")
    assert sent.status_code == 200
    assert 'class="refused"' in sent.text and "unknown code" in sent.text
    assert world.stand.commands()[0][1:] == ({"resolution_code": "handled"}, "team_lead")


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"action": "assign", "assignee_id": PAUL}, 422, "Select at least one request"),
        ({"keys": ["SPT-1", "DROP TABLE"], "action": "assign"}, 422, "not a request number"),
        ({"keys": ["SPT-1\x00"], "action": "assign"}, 422, "not a request number"),
        ({"keys": [f"SPT-{n}" for n in range(101)], "action": "close"}, 422, "at most 100"),
        ({"keys": "SPT-1", "action": "delete"}, 422, "Choose an action"),
        ({"keys": "SPT-1"}, 422, "Choose an action"),
        ({"keys": "SPT-1", "action": "assign", "assignee_id": ANNE}, 422, "among the desk"),
        ({"keys": "SPT-1", "action": "assign"}, 422, "among the desk"),
        ({"keys": "SPT-1", "action": "priority", "priority": "urgent"}, 422, "new priority"),
        (
            {"keys": "SPT-1", "action": "priority", "priority": "low", "reason": "a\x07b"},
            422,
            "at most 500",
        ),
        ({"keys": "SPT-1", "action": "close", "resolution_code": "done"}, 422, "resolution"),
    ],
)
async def test_a_bad_selection_is_the_queue_page_again_saying_why(
    world: World, fields: dict[str, Any], status: int, message: str
) -> None:
    lea = await world.signed_in()
    sent = await bulk(lea, **fields)
    assert sent.status_code == status, sent.text
    assert message in sent.text and 'id="form-error"' in sent.text
    assert 'id="bulk-form"' in sent.text
    assert world.stand.commands() == []


async def test_a_bulk_action_without_the_forms_token_is_refused(world: World) -> None:
    lea = await world.signed_in()
    sent = await lea.client.post(
        "/console/queues/erp-vendor/bulk",
        data={"keys": "SPT-1", "action": "assign", "assignee_id": PAUL, "csrf": "forged"},
    )
    assert sent.status_code == 403 and 'id="bulk-form"' in sent.text
    assert 'id="pick-SPT-1" name="keys" value="SPT-1" checked' in sent.text
    assert world.stand.commands() == []
