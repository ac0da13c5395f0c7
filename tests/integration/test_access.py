"""The access table: every HTTP operation of intake, workflow and sla, as each service's OpenAPI
document lists them, against who may call it. The services run on the real PostgreSQL server
(uvicorn, one module-wide server each; workflow and sla know one request of acme's).

For each operation: no identity, an expired token, a forged one (another key under the same key
id), one under `alg: none` and one signed for another service get 401; a customer of another
organisation and staff without a role at the request's desk are refused (403, or 404 where the
request's existence must not leak, or an answer that does not show it); a read-only token may
not write (403); and the right person is let through (2xx; for a command, anything but 401, 403
or 404: the desk's policy may still refuse it). An operation the table does not list fails the
first test, so a new route cannot escape the table; a route kept out of the document is checked
too. The satisfaction survey's API is authorised by its signed link, not by an identity.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from desk_servers import (
    NOW,
    POLICIES,
    Served,
    clock,
    intake_app,
    serving,
    sla_app,
    submission,
    ticket_created,
    workflow_app,
)
from fastapi import FastAPI
from fastapi.routing import APIRoute
from identity_support import bearer, expired, forged, unsigned
from published import published_envelopes
from starlette.routing import BaseRoute

from desk_contracts.tickets import TicketCreated
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.calendars import shipped_calendars
from sla.adapters.kafka import on_ticket_event
from sla.application.timers import Desks
from workflow.adapters.commands_api import EXAMPLES, http_commands, kebab

pytestmark = pytest.mark.integration

Service = Literal["intake", "workflow", "sla"]


@dataclass(frozen=True)
class Person:
    """Who calls: the claims of their identity (signed for the service called)."""

    subject: str
    organisation: str | None = None
    roles: dict[str, list[str]] = field(default_factory=dict)

    def header(self, service: Service, **claims: Any) -> dict[str, str]:
        return bearer(
            self.subject,
            audience=service,
            organisation=self.organisation,
            roles=self.roles,
            **claims,
        )

    def claims(self) -> dict[str, Any]:
        return {"organisation": self.organisation, "roles": self.roles}


# workflow's request is cloud-partner's, sla's erp-vendor's; both of acme, requested by Anne
ANNE = Person("anne@acme.example", "acme")
CARLA = Person("carla@globex.example", "globex")  # a customer of another organisation
AGENT = Person("paul@desk.example", roles={"cloud-partner": ["agent"]})
SERVICE_DESK = Person("sd@desk.example", roles={"erp-vendor": ["service_desk"]})
SALES = Person("sales@desk.example", roles={"erp-vendor": ["sales_admin"]})  # erp-vendor only
LEAD = Person("lea@desk.example", roles={"cloud-partner": ["team_lead"]})  # leads cloud-partner
SAAS_AGENT = Person("lea@desk.example", roles={"saas-desk": ["supervisor"]})  # saas-desk only

HIDDEN = "hidden"  # answered 2xx, without the request (a list that does not show it)
Refusal = int | Literal["hidden"] | None  # None: the check does not apply (reason given)


@dataclass(frozen=True)
class Access:
    """One operation: how the right person calls it, and what the others get."""

    right: Person | None  # None: authorised without an identity (a signed link)
    path: dict[str, str] = field(default_factory=dict)  # `{name}` -> what fills it
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    write: bool = False
    outsider: Refusal = None  # a customer of another organisation
    stranger: Refusal = None  # staff without a role at the request's desk
    command: bool = False  # the right person passes the access rules; the policy may refuse
    why_not: str = ""  # why `outsider` or `stranger` does not apply


SURVEY = "the satisfaction survey's API: its signed link authorises it, not an identity"
DESKS = "what each desk offers: anyone identified reads its customer side"
TICKET = {"ticket": "key"}  # the path names the request by its key


def table() -> dict[tuple[Service, str, str], Access]:
    """Every operation of the three services (see module)."""
    rows: dict[tuple[Service, str, str], Access] = {
        ("intake", "GET", "/desks"): Access(ANNE, why_not=DESKS),
        ("intake", "POST", "/requests"): Access(
            ANNE,
            body=submission(),
            write=True,
            outsider=403,  # files into their own organisation only
            stranger=403,  # holds no role at saas-desk
        ),
        ("intake", "GET", "/surveys/{token}"): Access(
            None, path={"token": "survey"}, why_not=SURVEY
        ),
        ("intake", "POST", "/surveys/{token}"): Access(
            None, path={"token": "survey"}, body={"rating": 4}, why_not=SURVEY
        ),
        ("workflow", "GET", "/desks"): Access(AGENT, why_not=DESKS),
        ("workflow", "GET", "/requests/{ticket}"): Access(
            AGENT, path=TICKET, outsider=404, stranger=404
        ),
        ("workflow", "GET", "/requests"): Access(
            AGENT, query={"organisation_id": "acme"}, outsider=403, stranger=HIDDEN
        ),
        ("sla", "GET", "/requests/{ticket}/clocks"): Access(
            SERVICE_DESK, path=TICKET, outsider=404, stranger=404
        ),
        ("sla", "GET", "/tickets/{ticket_id}/clocks"): Access(
            SERVICE_DESK, path={"ticket_id": "id"}, outsider=404, stranger=404
        ),
        ("sla", "GET", "/board"): Access(
            SERVICE_DESK, query={"policy_id": "erp-vendor"}, outsider=403, stranger=403
        ),
        ("sla", "GET", "/queue"): Access(
            SERVICE_DESK, query={"policy_id": "erp-vendor"}, outsider=403, stranger=403
        ),
        ("sla", "GET", "/queue/counts"): Access(
            SERVICE_DESK, query={"policy_id": "erp-vendor"}, outsider=403, stranger=403
        ),
        ("sla", "GET", "/desks/{policy_id}/summary"): Access(
            SERVICE_DESK, path={"policy_id": "erp-vendor"}, outsider=403, stranger=403
        ),
        ("workflow", "GET", "/desks/{policy_id}/summary"): Access(
            AGENT, path={"policy_id": "cloud-partner"}, outsider=403, stranger=403
        ),
        ("workflow", "GET", "/search"): Access(AGENT, outsider=403, stranger=HIDDEN),
        ("workflow", "GET", "/requests/{ticket}/audit"): Access(
            AGENT, path=TICKET, outsider=404, stranger=404
        ),
        ("workflow", "GET", "/desks/{policy_id}/audit"): Access(
            LEAD,
            path={"policy_id": "cloud-partner"},
            query={"from": "2026-03-01T00:00:00Z", "to": "2026-03-31T00:00:00Z"},
            outsider=403,
            stranger=403,
        ),
    }
    for command in http_commands():
        rows["workflow", "POST", f"/requests/{{ticket}}/{kebab(command.__name__)}"] = Access(
            AGENT,
            path=TICKET,
            body=EXAMPLES.get(command, {}),
            write=True,
            outsider=404,
            stranger=404,
            command=True,
        )
    return rows


TABLE = table()
STRANGERS: dict[Service, Person] = {"intake": SALES, "workflow": SALES, "sla": SAAS_AGENT}


@dataclass(frozen=True)
class Known:
    """A service served for this module and the request it knows."""

    served: Served
    ticket_id: str | None
    key: str | None


def _sla_ticket() -> TicketCreated:
    return ticket_created("erp-vendor").model_copy(
        update={"key": f"SPT-{uuid.uuid4().int % 10**6}"}
    )


@pytest.fixture(scope="module")
def services(database_url: str) -> Iterator[dict[Service, Known]]:
    workflow_ticket = ticket_created()
    sla_ticket = _sla_ticket()

    async def sla_knowing_a_request(pool: asyncpg.Pool) -> FastAPI:
        desks = Desks(POLICIES, shipped_calendars())
        (envelope,) = published_envelopes([sla_ticket], POLICIES[sla_ticket.policy_id])
        async with pool.acquire() as conn, conn.transaction():
            await on_ticket_event(desks, clock)(conn, envelope, sla_ticket)
        return await sla_app(pool)

    with (
        serving(database_url, "intake", intake_app) as intake,
        serving(database_url, "workflow", workflow_app, workflow_ticket) as workflow,
        serving(database_url, "sla", sla_knowing_a_request) as sla,
    ):
        yield {
            "intake": Known(intake, None, None),
            "workflow": Known(workflow, workflow_ticket.ticket_id, workflow_ticket.key),
            "sla": Known(sla, sla_ticket.ticket_id, sla_ticket.key),
        }


def operations(served: Served) -> set[tuple[str, str]]:
    """(method, path) of every operation `served`'s OpenAPI document lists."""
    document = httpx.get(f"{served.url}/openapi.json").json()
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


@pytest.mark.parametrize("service", ["intake", "workflow", "sla"])
def test_every_operation_of_the_document_is_in_the_table(
    services: dict[Service, Known], service: Service
) -> None:
    listed = {(method, path) for (s, method, path) in TABLE if s == service}
    documented = operations(services[service].served)
    assert documented - listed == set(), f"{service}: operations the access table does not list"
    assert listed - documented == set(), f"{service}: rows of operations that no longer exist"


async def _app(service: Service) -> FastAPI:
    maker = {"intake": intake_app, "workflow": workflow_app, "sla": sla_app}[service]
    return await maker(None)  # type: ignore[arg-type]  # no pool: the routes are only listed


def _api_routes(routes: Iterable[BaseRoute]) -> list[APIRoute]:
    """Every API route, those of included routers too (FastAPI keeps an included router whole,
    as a route that holds it: `original_router`)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        included = getattr(route, "original_router", None)
        if included is not None:
            found += _api_routes(included.routes)
    return found


@pytest.mark.parametrize("service", ["intake", "workflow", "sla"])
async def test_a_route_kept_out_of_the_document_needs_an_identity_too(
    services: dict[Service, Known], service: Service
) -> None:
    """Only workflow's catch-all of unknown commands is kept out of the document (besides
    FastAPI's own pages); it refuses an unidentified caller as every command does."""
    routes = _api_routes((await _app(service)).routes)
    assert len(routes) >= len([row for row in TABLE if row[0] == service])
    hidden = {
        (method, route.path)
        for route in routes
        if not route.include_in_schema
        for method in route.methods
    }
    expected = {("POST", "/requests/{ticket}/{command}")} if service == "workflow" else set()
    assert hidden == expected
    known = services[service]
    with httpx.Client(base_url=known.served.url, timeout=10) as http:
        for _, path in hidden:
            target = path.format(ticket=known.key, command="fly")
            assert http.post(target).status_code == 401
            fly = http.post(target, headers=AGENT.header("workflow"))
            assert fly.status_code == 404 and "no command 'fly'" in fly.text


def survey_link() -> str:
    claim = SurveyClaim(
        ticket_id=str(uuid.uuid4()),
        key="PRB-1001",
        policy_id="saas-desk",
        respondent="anne@acme.example",
        language="en",
        expires_at=NOW + timedelta(days=30),
    )
    return make_token("test-survey-secret", claim)  # intake_app's survey secret


def call(
    known: Known, method: str, path: str, access: Access, headers: dict[str, str]
) -> httpx.Response:
    values = {"key": known.key, "id": known.ticket_id, "survey": survey_link()}
    # a desk's id stands for itself
    target = path.format(**{name: values.get(what, what) for name, what in access.path.items()})
    with httpx.Client(base_url=known.served.url, timeout=10) as http:
        return http.request(
            method,
            target,
            params=access.query,
            json=access.body,
            data=access.form,
            headers=headers,
        )


ROWS = [pytest.param(key, id=f"{key[0]} {key[1]} {key[2]}") for key in TABLE]


def _audience_elsewhere(service: Service) -> Service:
    return "intake" if service != "intake" else "workflow"


@pytest.mark.parametrize("row", ROWS)
def test_who_cannot_prove_who_they_are_is_refused(
    services: dict[Service, Known], row: tuple[Service, str, str]
) -> None:
    service, method, path = row
    access = TABLE[row]
    known = services[service]
    if access.right is None:  # a signed link authorises it: no identity is asked
        answer = call(known, method, path, access, {})
        assert answer.is_success, answer.text
        return
    right = access.right
    claims = right.claims()
    tokens = {
        "expired": expired(right.subject, audience=service, **claims),
        "forged": forged(right.subject, audience=service, **claims),
        "alg none": unsigned(right.subject, audience=service, **claims),
        "another service's": right.header(_audience_elsewhere(service))["Authorization"][7:],
        "not a token": "not-a-token",
    }
    answer = call(known, method, path, access, {})
    assert answer.status_code == 401, ("no identity", answer.text)
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    for what, token in tokens.items():
        answer = call(known, method, path, access, {"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, (what, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer"), what
    plain = {"X-Actor": right.subject, "X-Actor-Role": "agent", "X-Actor-Organisation": "acme"}
    assert call(known, method, path, access, plain).status_code == 401  # not believed


def _masked(answer: httpx.Response, known: Known) -> str:
    """The answer with the request's key and id (as asked in the path) masked."""
    return answer.text.replace(str(known.key), "?").replace(str(known.ticket_id), "?")


def _refused(
    known: Known, method: str, path: str, access: Access, headers: dict[str, str], expected: Refusal
) -> None:
    answer = call(known, method, path, access, headers)
    if expected == HIDDEN:
        assert answer.is_success, answer.text
        assert str(known.key) not in answer.text and str(known.ticket_id) not in answer.text
        return
    assert answer.status_code == expected, answer.text
    assert "Jira is slow" not in answer.text  # nothing of the request
    if expected == 404:  # the very answer a request that does not exist gets
        ghost = replace(known, ticket_id=str(uuid.uuid4()), key="SUP-404404")
        unknown = call(ghost, method, path, access, headers)
        assert (unknown.status_code, _masked(unknown, ghost)) == (404, _masked(answer, known))


@pytest.mark.parametrize("row", ROWS)
def test_who_may_not_is_refused_and_the_right_person_is_let_through(
    services: dict[Service, Known], row: tuple[Service, str, str]
) -> None:
    service, method, path = row
    access = TABLE[row]
    known = services[service]
    if access.right is None:
        assert access.why_not, "an operation without an identity says why"
        return
    checks = {
        "outsider": (CARLA, access.outsider),
        "stranger": (STRANGERS[service], access.stranger),
    }
    for who, (person, expected) in checks.items():
        if expected is None:
            assert access.why_not, f"{who}: say why the check does not apply"
            continue
        _refused(known, method, path, access, person.header(service), expected)
    if access.write:
        reader = access.right.header(service, scope=["read"])
        answer = call(known, method, path, access, reader)
        assert answer.status_code == 403 and "read-only token" in answer.text, answer.text
    answer = call(known, method, path, access, access.right.header(service))
    if access.command:
        assert answer.status_code not in (401, 403, 404), answer.text
    else:
        assert answer.is_success, answer.text


@pytest.mark.parametrize(
    ("service", "path", "query"),
    [
        ("workflow", "/requests/{key}", {}),
        ("sla", "/requests/{key}/clocks", {}),
        ("sla", "/board", {"policy_id": "erp-vendor"}),
    ],
)
def test_a_role_the_identity_does_not_grant_cannot_be_chosen(
    services: dict[Service, Known], service: Service, path: str, query: dict[str, str]
) -> None:
    """`X-Actor-Role` chooses among the roles the identity grants, nothing more: a customer
    naming a support role is refused (403), whoever they are."""
    known = services[service]
    with httpx.Client(base_url=known.served.url, timeout=10) as http:
        target = path.format(key=known.key)
        for role in ("agent", "service_desk", "team_lead"):
            posing = http.get(
                target, params=query, headers={**ANNE.header(service), "X-Actor-Role": role}
            )
            assert posing.status_code == 403, posing.text
            assert f"you do not hold the role {role!r}" in posing.json()["detail"]
