"""Workflow's commands as OpenAPI operations, on the real PostgreSQL server: each command its
own documented operation (body, who may send it, every answer), unknown fields and blank texts
refused naming the field, refusals listing the desk's valid values; `GET /desks`."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import open_in_workflow, ticket_created
from identity_support import bearer, verifier
from service_support import service_store

from desk_policies.audience import Audience
from desk_policies.description import describe, desk_for
from desk_policies.loader import load_policies
from workflow.adapters.commands_api import (
    EXAMPLES,
    NOT_IN_BODY,
    body_model,
    http_commands,
    kebab,
)
from workflow.adapters.http import create_app
from workflow.domain.commands import Command

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = bearer("paul@partner.example", audience="workflow", roles={"cloud-partner": ["agent"]})
COMMANDS = http_commands()
ANSWERS = {"200", "401", "403", "404", "409", "412", "413", "422", "503"}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


@pytest.fixture
async def http(pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(pool, POLICIES, lambda: NOW, verifier=verifier("workflow"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://workflow") as client:
        yield client


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    # no pool: the document serves no request
    app = create_app(None, POLICIES, lambda: NOW, verifier=verifier("workflow"))
    openapi: dict[str, Any] = app.openapi()
    return openapi


async def opened(pool: asyncpg.Pool) -> str:
    event = ticket_created()
    await open_in_workflow(pool, event)
    return event.key


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or the component it refers to (alone or beside null, an optional body)."""
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:
            found: dict[str, Any] = document["components"]["schemas"][option["$ref"].split("/")[-1]]
            return found
    return schema


def test_the_system_commands_are_no_operations(document: dict[str, Any]) -> None:
    paths = set(document["paths"])
    for name in ("send-reminder", "auto-close", "record-delivery-failure"):
        assert f"/requests/{{ticket}}/{name}" not in paths
    posted = {p for p, operations in document["paths"].items() if "post" in operations}
    commands = {p for p in posted if p.startswith("/requests/{ticket}/")}  # not its audit
    assert commands == {f"/requests/{{ticket}}/{kebab(c.__name__)}" for c in COMMANDS}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: kebab(c.__name__))
def test_each_command_is_an_operation_with_its_body_and_answers(
    document: dict[str, Any], command: type[Command]
) -> None:
    operation = document["paths"][f"/requests/{{ticket}}/{kebab(command.__name__)}"]["post"]
    assert operation["summary"] == inspect.cleandoc(command.__doc__ or "").split("\n")[0]
    for policy in POLICIES:
        assert f"- `{policy}`: " in operation["description"]  # who may send it, by desk
    fields = [f for f in dataclasses.fields(command) if f.name not in NOT_IN_BODY]
    required = {f.name for f in fields if f.default is dataclasses.MISSING}
    assert operation["requestBody"].get("required", False) == bool(required)
    body = resolved(document, operation["requestBody"]["content"]["application/json"]["schema"])
    assert body["title"] == f"{command.__name__}Body"
    assert body["additionalProperties"] is False
    assert set(body.get("properties", {})) == {f.name for f in fields}
    assert set(body.get("required", [])) == required
    assert body["examples"] == [EXAMPLES.get(command, {})]
    answers = operation["responses"]
    assert set(answers) >= ANSWERS
    assert (
        resolved(document, answers["200"]["content"]["application/json"]["schema"])["title"]
        == "CommandAccepted"
    )
    assert "ETag" in answers["200"]["headers"]
    for status, shape in (("409", "Problem"), ("412", "Problem"), ("422", "HTTPValidationError")):
        schema = answers[status]["content"]["application/json"]["schema"]
        assert resolved(document, schema)["title"] == shape


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: kebab(c.__name__))
def test_each_example_is_a_valid_body(command: type[Command]) -> None:
    body_model(command, POLICIES).model_validate(EXAMPLES.get(command, {}))


def test_who_may_send_a_command_is_read_from_the_policies(document: dict[str, Any]) -> None:
    qualify = document["paths"]["/requests/{ticket}/qualify"]["post"]["description"]
    assert "- `cloud-partner`: not offered" in qualify
    assert "- `erp-vendor`: front_desk, team_lead, support_manager from open (to qualified)" in (
        qualify
    )
    reopen = document["paths"]["/requests/{ticket}/reopen"]["post"]["description"]
    assert "- `erp-vendor`: not offered (a closed request is final)" in reopen
    comment = document["paths"]["/requests/{ticket}/add-comment"]["post"]["description"]
    assert "comment_internal: agent, supervisor" in comment  # saas-desk


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: kebab(c.__name__))
async def test_an_unknown_field_is_refused_naming_it_and_nothing_happens(
    pool: asyncpg.Pool, http: httpx.AsyncClient, command: type[Command]
) -> None:
    key = await opened(pool)
    sent = {**EXAMPLES.get(command, {}), "internal": True}
    answer = await http.post(f"/requests/{key}/{kebab(command.__name__)}", json=sent, headers=AGENT)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", "internal"] and problem["type"] == "extra_forbidden"
    after = await http.get(f"/requests/{key}", headers=AGENT)
    assert after.json()["version"] == 1


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ("add-comment", "body"),
        ("request-information", "comment"),
        ("resolve", "comment"),
        ("dispute-resolution", "comment"),
    ],
)
async def test_a_blank_text_is_refused_as_a_missing_one_is(
    pool: asyncpg.Pool, http: httpx.AsyncClient, command: str, field: str
) -> None:
    key = await opened(pool)
    body = {"resolution_code": "done"} if command == "resolve" else {}
    blank = await http.post(
        f"/requests/{key}/{command}", json={**body, field: " \n\t"}, headers=AGENT
    )
    missing = await http.post(f"/requests/{key}/{command}", json=body, headers=AGENT)
    for answer in (blank, missing):
        assert answer.status_code == 422, answer.text
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["body", field]
    assert "must not be blank" in blank.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("command", "body", "field", "valid"),
    [
        (
            "resolve",
            {"resolution_code": "fixed", "comment": "Done"},
            "resolution_code",
            "(codes: done, consulting, wont_do, duplicate, no_answer)",
        ),
        ("close", {"resolution_code": "fixed"}, "resolution_code", "(codes: done, consulting"),
        (
            "change-priority",
            {"priority": "urgent"},
            "priority",
            "(priorities: low, medium, high, critical)",
        ),
        ("escalate", {"target": "level2"}, "target", "(escalations: none)"),
        (
            "wait-for-third-party",
            {"party": "ibm"},
            "party",
            "(atlassian, addon_vendor, hosting)",
        ),
    ],
)
async def test_a_value_the_desk_does_not_accept_is_refused_listing_the_valid_ones(
    pool: asyncpg.Pool,
    http: httpx.AsyncClient,
    command: str,
    body: dict[str, str],
    field: str,
    valid: str,
) -> None:
    key = await opened(pool)
    answer = await http.post(f"/requests/{key}/{command}", json=body, headers=AGENT)
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", field]
    assert valid in problem["msg"]


async def test_a_role_the_identity_does_not_grant_is_refused_naming_it(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    key = await opened(pool)
    answer = await http.post(
        f"/requests/{key}/start-work", headers={**AGENT, "X-Actor-Role": "team_lead"}
    )
    assert answer.status_code == 403
    assert answer.json() == {"detail": "you do not hold the role 'team_lead' at any desk"}
    after = await http.get(f"/requests/{key}", headers=AGENT)
    assert after.json()["version"] == 1


async def test_the_actor_is_the_identity_in_the_role_it_grants_or_chooses(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    """Who acts is recorded as the token says: its subject, in its first role at the desk or
    the one `X-Actor-Role` chooses among those it grants."""
    key = await opened(pool)
    lea = bearer(
        "lea@desk.example", audience="workflow", roles={"cloud-partner": ["team_lead", "agent"]}
    )
    first = await http.post(f"/requests/{key}/add-comment", json={"body": "Hi"}, headers=lea)
    chosen = await http.post(
        f"/requests/{key}/add-comment",
        json={"body": "Again"},
        headers={**lea, "X-Actor-Role": "agent"},
    )
    assert first.status_code == chosen.status_code == 200, (first.text, chosen.text)
    history = (await http.get(f"/requests/{key}", headers=lea)).json()["history"]
    assert [(h["data"]["actor_id"], h["data"]["actor_role"]) for h in history[:2]] == [
        ("lea@desk.example", "agent"),
        ("lea@desk.example", "team_lead"),
    ]


async def test_a_policy_refusal_is_409_with_the_reason(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    key = await opened(pool)
    answer = await http.post(f"/requests/{key}/confirm-resolution", json={}, headers=AGENT)
    assert answer.status_code == 409
    assert answer.json() == {"detail": "cannot confirm the resolution while it is 'Submitted'"}


async def test_a_command_without_a_body_when_none_is_needed(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    key = await opened(pool)
    answer = await http.post(f"/requests/{key}/start-work", headers=AGENT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["events"] == ["WorkStarted"] and answer.headers["ETag"] == '"2"'


async def test_an_unknown_command_lists_the_commands(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    key = await opened(pool)
    answer = await http.post(f"/requests/{key}/close-request", headers=AGENT)
    assert answer.status_code == 404
    detail = answer.json()["detail"]
    assert detail.startswith("no command 'close-request' (commands: qualify, assign, ")
    assert all(kebab(c.__name__) in detail for c in COMMANDS)


async def test_desks_tell_what_a_portal_needs(http: httpx.AsyncClient) -> None:
    lead = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"]}
    answer = await http.get(
        "/desks", headers=bearer("lea@desk.example", audience="workflow", roles=lead)
    )
    assert answer.status_code == 200
    desks = {d["id"]: d for d in answer.json()}
    assert desks == {
        p.id: desk_for(p, Audience.SUPPORT if p.id in lead else None).model_dump(
            mode="json", by_alias=True
        )
        for p in POLICIES.values()
    }
    assert desks["erp-vendor"] == describe(POLICIES["erp-vendor"]).model_dump(
        mode="json", by_alias=True
    )  # a team lead is on erp-vendor's support side: the whole desk
    erp = desks["erp-vendor"]
    assert {"id": "requester", "labels": {"fr": "Demandeur", "en": "Requester"},
            "side": "customer"} in erp["roles"]  # fmt: skip
    assert {"action": "qualify", "from": ["open"], "to": "qualified",
            "roles": ["front_desk", "team_lead", "support_manager"], "guard": None} in (
        erp["transitions"]
    )  # fmt: skip
    high = next(p for p in erp["priority_levels"] if p["id"] == "high")
    assert high["meaning"] == {"fr": "Processus vital bloqué", "en": "Vital process blocked"}
    status = next(s for s in erp["statuses"] if s["id"] == "qualified")
    assert status["category"] == "open" and status["expected_actor"] == "daily"
    assert erp["escalations"] == {
        "triage": "waiting_triage",
        "rnd": "waiting_rnd",
        "level2": "escalated_level2",
    }
    assert [c["id"] for c in erp["resolution_codes"]] == [
        "handled",
        "escalated",
        "consulting",
        "no_answer",
    ]
    assert desks["cloud-partner"]["third_parties"] == ["atlassian", "addon_vendor", "hosting"]


async def test_a_client_cannot_say_its_comment_came_by_mail(
    pool: asyncpg.Pool, http: httpx.AsyncClient
) -> None:
    """How a comment arrived is the mail gateway's to say: over HTTP it is refused (422)."""
    key = await opened(pool)
    for field, value in (("channel", "email"), ("source_message_id", "<m@acme.example>")):
        answer = await http.post(
            f"/requests/{key}/add-comment",
            json={"body": "From my mailbox", field: value},
            headers=AGENT,
        )
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    "reader",
    [
        {"organisation": "acme"},  # a customer
        {},  # of no organisation and no desk
        {"roles": {"saas-desk": ["supervisor"]}},  # staff of another desk
        {"roles": {"erp-vendor": ["system"]}},  # a role of erp-vendor that is not its support side
    ],
)
async def test_anyone_but_the_support_side_reads_no_internal_role(
    http: httpx.AsyncClient, reader: dict[str, Any]
) -> None:
    """The audience rule holds for the desks too: a customer (or whoever holds no support role
    at the desk) reads the customer side's roles, transitions and creators only, no internal
    routing; without an identity, nothing."""
    assert (await http.get("/desks")).status_code == 401
    answer = await http.get(
        "/desks", headers=bearer("x@acme.example", audience="workflow", **reader)
    )
    assert answer.status_code == 200
    erp = next(d for d in answer.json() if d["id"] == "erp-vendor")
    customers = {r.id for r in POLICIES["erp-vendor"].roles if r.side.value == "customer"}
    assert {r["id"] for r in erp["roles"]} == customers
    named = {r for t in erp["transitions"] for r in t["roles"]}
    named |= {r for t in erp["request_types"] for r in t["creators"]}
    named |= {r for roles in erp["permissions"].values() for r in roles}
    assert named and named <= customers
    assert {s["expected_actor"] for s in erp["statuses"]} <= customers | {"support", None}
    assert erp["escalations"] == {} and erp["third_parties"] == []
    licence = next(t for t in erp["request_types"] if t["id"] == "licence")
    assert licence["creators"] == []  # sales administration makes those, not a customer
