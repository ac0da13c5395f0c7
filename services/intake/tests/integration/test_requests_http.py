"""`POST /requests` against intake's app and the real PostgreSQL server: who submits is the
verified identity (its subject, in a role it grants at the desk, of the organisation it
carries), the people a request names must be admitted by the directory in its organisation (they
receive its mail), and idempotency keys belong to their submitter."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from service_support import service_store

from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_policies.audience import Audience
from desk_policies.description import desk_for
from desk_policies.loader import load_policies
from intake.adapters.http import create_app

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def customer(address: str, **claims: Any) -> dict[str, str]:
    """The header of a token for a person of the organisation their mail domain names."""
    organisation = address.rpartition("@")[2].split(".")[0]
    return bearer(address, audience="intake", organisation=organisation, **claims)


def staff(address: str, **roles: str) -> dict[str, str]:
    """The header of a token for staff holding `roles` (desk id with `_` for `-`: role)."""
    held = {desk.replace("_", "-"): [role] for desk, role in roles.items()}
    return bearer(address, audience="intake", roles=held)


ANNE_ID = "anne@acme.example"
ANNE = customer(ANNE_ID)  # the clients' identity unless a test names another
PAUL = staff("paul@desk.example", saas_desk="agent")


def request(**changes: Any) -> dict[str, Any]:
    return {
        "policy_id": "saas-desk",
        "request_type": "problem_report",
        "priority": "high",
        "subject": "The monthly export fails",
        "description": "Error 500 on every export since Monday",
        "organisation_id": "acme",
        "requester": "anne@acme.example",
        **changes,
    }


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with service_store(database_url, "intake") as pool:
        app = create_app(
            pool, POLICIES, lambda: NOW, "http://workflow", verifier=verifier("intake")
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=ANNE
        ) as client:
            client.pool = pool  # type: ignore[attr-defined]
            client.commits = app.state.commits  # type: ignore[attr-defined]
            yield client


async def created(http: httpx.AsyncClient) -> int:
    pool: asyncpg.Pool = http.pool  # type: ignore[attr-defined]
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'TicketCreated'"
    )
    return count


async def test_fifty_outside_participants_are_refused_and_nothing_is_created(
    http: httpx.AsyncClient,
) -> None:
    outsiders = [f"buyer{n}@outside.example" for n in range(50)]
    answer = await http.post(
        "/requests",
        json=request(subject="CHEAP PILLS, CLICK NOW", participants=outsiders),
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "participants"]
    assert "'buyer0@outside.example'" in problem["msg"]
    assert "neither a person of organisation 'acme'" in problem["msg"]
    assert await created(http) == 0


@pytest.mark.parametrize(
    ("changes", "field", "why"),
    [
        ({"participants": ["newcomer@acme.example"]}, "participants", "organisation 'acme'"),
        ({"participants": ["carla@globex.example"]}, "participants", "'carla@globex.example'"),
        ({"requester": "victim@outside.example"}, "requester", "does not belong to"),
        ({"requester": "carla@globex.example"}, "requester", "organisation 'acme'"),
    ],
)
async def test_people_outside_the_organisation_are_refused(
    http: httpx.AsyncClient, changes: dict[str, Any], field: str, why: str
) -> None:
    answer = await http.post("/requests", json=request(**changes), headers=ANNE)  # her own
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", field] and why in problem["msg"]
    assert await created(http) == 0


@pytest.mark.parametrize(
    ("changes", "headers"),
    [
        ({"organisation_id": "globex"}, ANNE),
        ({"organisation_id": "globex", "requester": "carla@globex.example"}, ANNE),
        ({"organisation_id": "globex", "requester": "paul@desk.example"}, ANNE),
        ({"organisation_id": "nowhere"}, ANNE),
    ],
)
async def test_a_requester_files_into_their_own_organisation_only(
    http: httpx.AsyncClient, changes: dict[str, Any], headers: dict[str, str]
) -> None:
    answer = await http.post("/requests", json=request(**changes), headers=headers)
    assert answer.status_code == 403, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["body", "organisation_id"]
    assert "their own organisation only" in problem["msg"]
    assert await created(http) == 0


async def test_the_organisation_is_the_one_the_identity_carries(http: httpx.AsyncClient) -> None:
    """The mail domain would place the newcomer in globex; the identity says acme."""
    body = request(organisation_id="globex", requester="newcomer@globex.example")
    placed_elsewhere = bearer("newcomer@globex.example", audience="intake", organisation="acme")
    refused = await http.post("/requests", json=body, headers=placed_elsewhere)
    assert refused.status_code == 403, refused.text
    own = await http.post("/requests", json=body, headers=customer("newcomer@globex.example"))
    assert own.status_code == 201, own.text
    assert await created(http) == 1


@pytest.mark.parametrize(
    ("headers", "where", "why"),
    [
        # staff choosing a customer's role: the identity grants it no such role
        ({**PAUL, "X-Actor-Role": "requester"}, "x-actor-role", "do not hold the role"),
        ({**ANNE, "X-Actor-Role": "agent"}, "x-actor-role", "do not hold the role 'agent'"),
        # neither staff of the desk nor of an organisation
        (bearer("paul@desk.example", audience="intake"), "authorization", "hold no role"),
        (staff("sales@desk.example", erp_vendor="sales_admin"), "authorization", "hold no role"),
    ],
)
async def test_a_role_the_identity_does_not_grant_at_the_desk_is_refused(
    http: httpx.AsyncClient, headers: dict[str, str], where: str, why: str
) -> None:
    answer = await http.post("/requests", json=request(), headers=headers)
    assert answer.status_code == 403, answer.text
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["header", where] and why in problem["msg"]
    assert await created(http) == 0


async def test_no_identity_or_a_read_only_one_submits_nothing(http: httpx.AsyncClient) -> None:
    for anonymous in ({"Authorization": ""}, {"Authorization": "Basic YW5uZTphbm5l"}):
        answer = await http.post("/requests", json=request(), headers=anonymous)
        assert answer.status_code == 401, answer.text
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    reader = await http.post(
        "/requests", json=request(), headers=customer("anne@acme.example", scope=["read"])
    )
    assert reader.status_code == 403, reader.text
    [problem] = reader.json()["detail"]
    assert problem["loc"] == ["header", "authorization"]
    assert problem["msg"].startswith("read-only token")
    assert await created(http) == 0


async def test_the_channel_is_the_api_for_an_api_token_the_portal_otherwise(
    http: httpx.AsyncClient,
) -> None:
    for via in ("api_token", "password", "sso"):
        answer = await http.post(
            "/requests", json=request(subject=f"By {via}"), headers=customer(ANNE_ID, via=via)
        )
        assert answer.status_code == 201, answer.text
    pool: asyncpg.Pool = http.pool  # type: ignore[attr-defined]
    rows = await pool.fetch(
        """SELECT payload->>'subject' AS subject, payload->>'channel' AS channel,
                  payload->>'created_by' AS created_by
           FROM events WHERE event_type = 'TicketCreated' ORDER BY global_position"""
    )
    assert [(r["subject"], r["channel"], r["created_by"]) for r in rows] == [
        ("By api_token", "api", ANNE_ID),
        ("By password", "portal", ANNE_ID),
        ("By sso", "portal", ANNE_ID),
    ]


async def test_staff_file_on_a_clients_behalf_into_an_organisation_of_the_directory(
    http: httpx.AsyncClient,
) -> None:
    sales = staff("sales@desk.example", erp_vendor="sales_admin")
    licence = request(
        policy_id="erp-vendor",
        request_type="licence",
        organisation_id="globex",
        requester="carla@globex.example",
    )
    accepted = await http.post("/requests", json=licence, headers=sales)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["key"].startswith("LIC-")
    unknown = await http.post(
        "/requests",
        json={**licence, "organisation_id": "nowhere", "requester": "sales@desk.example"},
        headers=sales,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["detail"] == [
        {
            "loc": ["body", "organisation_id"],
            "msg": "'nowhere' is not an organisation of the directory",
            "type": "invalid",
        }
    ]
    assert await created(http) == 1


async def test_a_creator_outside_the_organisation_is_refused(http: httpx.AsyncClient) -> None:
    """Whoever the identity says: the creator receives the request's mail, so the directory
    must admit them in its organisation."""
    outsider = bearer("spam@outside.example", audience="intake", organisation="acme")
    answer = await http.post("/requests", json=request(), headers=outsider)
    assert answer.status_code == 403, answer.text
    assert "'spam@outside.example'" in answer.json()["detail"][0]["msg"]
    assert await created(http) == 0


async def test_a_creator_refused_is_named_as_the_identity(http: httpx.AsyncClient) -> None:
    not_listed = staff("sales@desk.example", saas_desk="agent")  # erp-vendor's in the directory
    answer = await http.post("/requests", json=request(), headers=not_listed)
    assert answer.status_code == 403, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["header", "authorization"]  # as the edge names a header
    assert "the creator may not take part: 'sales@desk.example'" in problem["msg"]
    assert await created(http) == 0


@pytest.mark.parametrize("unknown", ["internal", "requester_id", "Priority"])
async def test_an_unknown_field_is_refused_naming_it(http: httpx.AsyncClient, unknown: str) -> None:
    answer = await http.post("/requests", json=request(**{unknown: True}))
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", unknown] and problem["type"] == "extra_forbidden"
    assert await created(http) == 0


@pytest.mark.parametrize(
    ("changes", "field", "valid"),
    [
        ({"policy_id": "helpdesk"}, "policy_id", "(known: cloud-partner, erp-vendor, saas-desk)"),
        ({"request_type": "bug"}, "request_type", "(known: information_request, problem_report"),
        ({"priority": "urgent"}, "priority", "(known: low, medium, high, critical)"),
    ],
)
async def test_a_value_the_desk_does_not_offer_is_refused_listing_the_valid_ones(
    http: httpx.AsyncClient, changes: dict[str, str], field: str, valid: str
) -> None:
    answer = await http.post("/requests", json=request(**changes))
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["loc"] == ["body", field] and valid in problem["msg"]


async def test_desks_tell_the_same_as_workflow_and_what_they_always_did(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/desks", headers={"Authorization": ""})).status_code == 401
    paul = staff(
        "paul@desk.example", erp_vendor="service_desk", cloud_partner="agent", saas_desk="agent"
    )
    answer = await http.get("/desks", headers=paul)
    assert answer.status_code == 200
    desks = answer.json()
    assert desks == [
        desk_for(p, Audience.SUPPORT).model_dump(mode="json", by_alias=True)
        for p in POLICIES.values()
    ]
    max_ = staff("max@desk.example", erp_vendor="support_manager")  # staff of erp-vendor only
    theirs = {d["id"]: d for d in (await http.get("/desks", headers=max_)).json()}
    assert theirs["erp-vendor"] == desks[[d["id"] for d in desks].index("erp-vendor")]
    assert theirs["saas-desk"] == desk_for(POLICIES["saas-desk"], None).model_dump(
        mode="json", by_alias=True
    )  # the customer side: as anyone who is not of saas-desk's support side reads it
    saas = next(d for d in desks if d["id"] == "saas-desk")
    assert saas["name"] == POLICIES["saas-desk"].name
    assert saas["priorities"] == ["low", "medium", "high", "critical"]  # ids, as before
    kinds = {t["id"]: t for t in saas["request_types"]}
    assert {k: kinds["problem_report"][k] for k in ("id", "prefix", "label", "creators")} == {
        "id": "problem_report",
        "prefix": "PRB",
        "label": POLICIES["saas-desk"].request_types[1].labels.en,
        "creators": ["requester", "participant", "agent", "supervisor"],
    }


async def test_colleagues_and_staff_of_the_desk_are_accepted(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        "/requests",
        json=request(participants=["Bruno@acme.example", "paul@desk.example"]),
    )
    assert answer.status_code == 201, answer.text
    by_domain = await http.post(
        "/requests",
        json=request(requester="newcomer@acme.example"),
        headers=customer("newcomer@acme.example"),
    )
    assert by_domain.status_code == 201, by_domain.text  # as the mail gateway admits senders
    on_behalf = await http.post(
        "/requests", json=request(requester="bruno@acme.example"), headers=PAUL
    )
    assert on_behalf.status_code == 201, on_behalf.text
    assert await created(http) == 3


async def test_idempotency_keys_belong_to_their_submitter(http: httpx.AsyncClient) -> None:
    key = {"Idempotency-Key": "retry-1"}
    first = await http.post("/requests", json=request(), headers=key)
    assert first.status_code == 201, first.text
    again = await http.post("/requests", json=request(), headers=key)
    assert again.status_code == 200 and again.json()["ticket_id"] == first.json()["ticket_id"]

    # the same key and body from someone else: their own request, nothing of Anne's
    other = await http.post(
        "/requests", json=request(), headers={**key, **customer("bruno@acme.example")}
    )
    assert other.status_code == 201, other.text
    assert other.json()["created"] is True
    for leaked in (first.json()["ticket_id"], first.json()["key"]):
        assert leaked not in other.text
    # the same key, another body, from someone else: a new request too, no conflict naming hers
    third = await http.post(
        "/requests",
        json=request(requester="newcomer@acme.example", subject="Other"),
        headers={**key, **customer("newcomer@acme.example")},
    )
    assert third.status_code == 201, third.text
    for leaked in (first.json()["ticket_id"], first.json()["key"]):
        assert leaked not in third.text
    assert await created(http) == 3

    # the submitter's own key with another content: a conflict that names no request
    conflict = await http.post("/requests", json=request(subject="Changed"), headers=key)
    assert conflict.status_code == 409, conflict.text
    assert "already used" in conflict.json()["detail"][0]["msg"]
    assert first.json()["key"] not in conflict.text


async def test_submissions_arriving_together_each_get_their_own_answer_and_key(
    http: httpx.AsyncClient,
) -> None:
    """Concurrent POSTs share transactions (group commit): each is its own request, numbered
    without a gap, and a retry racing its first attempt gets the same request."""

    async def post(n: int) -> httpx.Response:
        person = f"person{n % 12}@acme.example"
        return await http.post(
            "/requests",
            json=request(requester=person, subject=f"Export {n % 12}"),
            headers={"Idempotency-Key": f"together-{n % 12}", **customer(person)},
        )

    answers = await asyncio.gather(*(post(n) for n in range(24)))
    assert sorted(a.status_code for a in answers) == [200] * 12 + [201] * 12
    by_person: dict[int, set[str]] = {}
    for n, answer in enumerate(answers):
        by_person.setdefault(n % 12, set()).add(answer.json()["ticket_id"])
    assert all(len(tickets) == 1 for tickets in by_person.values())
    numbers = sorted(
        int(a.json()["key"].rpartition("-")[2]) for a in answers if a.status_code == 201
    )
    assert numbers == list(range(numbers[0], numbers[0] + 12))  # gap-free
    assert await created(http) == 12


async def test_submissions_arriving_together_are_written_as_one_set(
    http: httpx.AsyncClient,
) -> None:
    """Distinct submissions queued together are written as a set (a few statements for all),
    each answered as alone: its own request and key, gap-free, its key kept for a retry."""

    async def post(n: int) -> httpx.Response:
        person = f"set{n}@acme.example"
        return await http.post(
            "/requests",
            json=request(requester=person, subject=f"Set {n}"),
            headers={"Idempotency-Key": f"set-{n}", **customer(person)},
        )

    answers = await asyncio.gather(*(post(n) for n in range(30)))
    assert [a.status_code for a in answers] == [201] * 30
    numbers = sorted(int(a.json()["key"].rpartition("-")[2]) for a in answers)
    assert numbers == list(range(numbers[0], numbers[0] + 30))  # gap-free
    assert len({a.json()["ticket_id"] for a in answers}) == 30
    assert http.commits.together > 1  # type: ignore[attr-defined]  # some were written as a set
    retries = await asyncio.gather(*(post(n) for n in range(30)))
    assert [r.status_code for r in retries] == [200] * 30
    assert [r.json()["ticket_id"] for r in retries] == [a.json()["ticket_id"] for a in answers]
    assert await created(http) == 30


async def test_keys_recorded_before_the_scope_keep_their_submitter(database_url: str) -> None:
    """Migration 0006 gives each earlier key the creator of the request it made, so a retry
    after the upgrade still finds its first answer."""
    migrations = migrations_in("intake", resources.files("intake") / "migrations")
    schema = f"t_intake_{uuid.uuid4().hex[:8]}"
    before = await open_store(database_url, schema, [m for m in migrations if m.version < 6])
    try:
        ticket_id = str(uuid.uuid4())
        payload = {"ticket_id": ticket_id, "created_by": "Anne@acme.example"}
        await before.execute(
            """INSERT INTO events (stream_id, stream_version, event_id, event_type, payload)
               VALUES ($1, 1, $2, 'TicketCreated', $3)""",
            ticket_id,
            uuid.uuid4(),
            json.dumps(payload),
        )
        await before.execute(
            """INSERT INTO idempotency_keys (key, request_hash, ticket_id, ticket_key)
               VALUES ('k-1', 'h', $1, 'PRB-1001')""",
            ticket_id,
        )
        after = await open_store(database_url, schema, migrations)
        rows = await after.fetch("SELECT submitter, key FROM idempotency_keys")
        await after.close()
        assert [tuple(row) for row in rows] == [("anne@acme.example", "k-1")]
    finally:
        await before.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await before.close()


@pytest.fixture
async def limited(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Intake with small hourly limits, 20 minutes before the hour's window ends."""
    from intake.domain.flood import RequestLimits

    limits = RequestLimits(per_submitter=3, per_domain=5, per_desk=8)
    clock = NOW.replace(minute=40)
    async with service_store(database_url, "intake") as pool:
        app = create_app(
            pool, POLICIES, lambda: clock, "http://workflow", verifier=verifier("intake"),
            limits=limits,
        )  # fmt: skip
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://intake", headers=ANNE
        ) as client:
            client.pool = pool  # type: ignore[attr-defined]
            yield client


def assert_flooded(answer: httpx.Response, why: str) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["Retry-After"] == "1200"  # the window frees at 10:00
    assert why in answer.json()["detail"] and "try again in 1200 s" in answer.json()["detail"]


async def test_made_up_requesters_of_one_domain_are_limited_together(
    limited: httpx.AsyncClient,
) -> None:
    # the directory admits any address of acme.example as a requester of acme
    answers = [
        await limited.post(
            "/requests",
            json=request(requester=f"madeup{n}@acme.example"),
            headers=customer(f"madeup{n}@acme.example"),
        )
        for n in range(7)
    ]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 2
    assert_flooded(answers[5], "the requester's mail domain has opened 5 requests this hour")
    assert "madeup" not in answers[5].text  # the refusal does not echo the input
    assert await created(limited) == 5
    other = await limited.post(
        "/requests",
        json=request(requester="carla@globex.example", organisation_id="globex"),
        headers=customer("carla@globex.example"),
    )
    assert other.status_code == 201, other.text  # another domain is not held back


async def test_limits_hold_for_submissions_arriving_together(
    limited: httpx.AsyncClient,
) -> None:
    """Submissions racing past a limit are counted as one by one: the first five of a domain
    pass, the others are refused, and the refused ones count for none."""

    async def post(n: int) -> httpx.Response:
        person = f"race{n}@acme.example"
        return await limited.post(
            "/requests", json=request(requester=person), headers=customer(person)
        )

    answers = await asyncio.gather(*(post(n) for n in range(9)))
    assert sorted(a.status_code for a in answers) == [201] * 5 + [429] * 4
    assert await created(limited) == 5
    async with limited.pool.acquire() as conn:  # type: ignore[attr-defined]
        counts = {
            row["kind"]: row["count"]
            for row in await conn.fetch("SELECT kind, count FROM mail_sender_counts")
            if row["kind"] != "request"
        }
    assert counts == {"request_domain": 5, "request_desk": 5}


async def test_one_submitter_is_limited_and_a_retry_neither_counts_nor_is_refused(
    limited: httpx.AsyncClient,
) -> None:
    first = await limited.post("/requests", json=request(), headers={"Idempotency-Key": "k0"})
    assert first.status_code == 201, first.text
    for n in range(1, 3):
        answer = await limited.post("/requests", json=request(subject=f"Export {n}"))
        assert answer.status_code == 201, answer.text
    for _ in range(3):  # retries of the first request: still its 200, never counted
        again = await limited.post("/requests", json=request(), headers={"Idempotency-Key": "k0"})
        assert again.status_code == 200, again.text
        assert again.json()["ticket_id"] == first.json()["ticket_id"]
    assert_flooded(
        await limited.post("/requests", json=request(subject="Export 4")),
        "this submitter has opened 3 requests this hour",
    )
    by_actor = await limited.post(  # Anne is counted as the submitter, whoever the requester
        "/requests", json=request(requester="bruno@acme.example"), headers=ANNE
    )
    assert_flooded(by_actor, "this submitter has opened 3 requests this hour")
    assert await created(limited) == 3


async def test_refused_attempts_use_up_nobody_s_hour(limited: httpx.AsyncClient) -> None:
    """A client looping on its 429 does not eat its domain's or the desk's hour."""
    for n in range(3):
        answer = await limited.post("/requests", json=request(subject=f"Export {n}"))
        assert answer.status_code == 201, answer.text
    for _ in range(10):
        assert (await limited.post("/requests", json=request())).status_code == 429
    for n in range(2):  # acme's two remaining, then the desk's three remaining
        answer = await limited.post(
            "/requests",
            json=request(requester=f"u{n}@acme.example"),
            headers=customer(f"u{n}@acme.example"),
        )
        assert answer.status_code == 201, answer.text
    for n in range(3):
        answer = await limited.post(
            "/requests",
            json=request(requester=f"u{n}@globex.example", organisation_id="globex"),
            headers=customer(f"u{n}@globex.example"),
        )
        assert answer.status_code == 201, answer.text
    assert await created(limited) == 8


async def test_staff_are_not_counted_for_the_customer_domain_but_the_desk_is_limited(
    limited: httpx.AsyncClient,
) -> None:
    for n in range(5):  # acme.example's hour is used up
        answer = await limited.post(
            "/requests",
            json=request(requester=f"user{n}@acme.example"),
            headers=customer(f"user{n}@acme.example"),
        )
        assert answer.status_code == 201, answer.text
    on_behalf = await limited.post(
        "/requests", json=request(requester="bruno@acme.example"), headers=PAUL
    )
    assert on_behalf.status_code == 201, on_behalf.text  # staff enter it all the same
    for n in range(2):
        answer = await limited.post(
            "/requests",
            json=request(requester=f"user{n}@globex.example", organisation_id="globex"),
            headers=customer(f"user{n}@globex.example"),
        )
        assert answer.status_code == 201, answer.text
    assert_flooded(  # the ninth request to saas-desk this hour
        await limited.post(
            "/requests",
            json=request(requester="dan@initech.example", organisation_id="initech"),
            headers=customer("dan@initech.example"),
        ),
        "this desk has received 8 requests this hour",
    )
    assert await created(limited) == 8


async def test_by_default_one_submitter_opens_at_most_thirty_requests_an_hour(
    http: httpx.AsyncClient,
) -> None:
    for n in range(30):
        answer = await http.post("/requests", json=request(subject=f"Export {n}"))
        assert answer.status_code == 201, answer.text
    over = await http.post("/requests", json=request(subject="Export 30"))
    assert over.status_code == 429, over.text
    assert over.headers["Retry-After"] == "3600"  # at 09:00:00 the window has just begun
    assert await created(http) == 30
