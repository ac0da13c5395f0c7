"""Hostile input at the HTTP edge of intake, workflow and sla (the real apps on the real
PostgreSQL server): each refused with a 4xx that names where and never echoes large input, and
nothing stored. One test per finding: lone surrogates, NUL in paths, queries and headers,
non-finite numbers, bodies without a size limit (300 MB streamed), refusals echoing their
input, events larger than a Kafka record, strings that are not addresses."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from desk_servers import (
    intake_app,
    open_in_workflow,
    sla_app,
    submission,
    ticket_created,
    workflow_app,
)
from identity_support import bearer
from service_support import service_store

from desk_contracts.topics import MAX_EVENT_BYTES
from desk_platform import edge

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
SMALL = 2048  # a refusal is a few hundred bytes, whatever it refuses
AGENT = bearer("paul@partner.example", audience="workflow", roles={"cloud-partner": ["agent"]})
JSON = {"content-type": "application/json"}
# who calls each service unless a test says otherwise: the requester (intake), an agent (sla)
CALLERS = {
    "intake": bearer("anne@acme.example", audience="intake", organisation="acme"),
    "workflow": {},
    "sla": bearer("paul@desk.example", audience="sla", roles={"saas-desk": ["agent"]}),
}


def client(app: Any, name: str) -> httpx.AsyncClient:
    # a server error is an answer here (500), not an exception raised into the test
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(
        transport=transport, base_url=f"http://{name}", timeout=30, headers=CALLERS[name]
    )


@pytest.fixture
async def intake_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "intake") as pool:
        yield pool


@pytest.fixture
async def intake(intake_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with client(await intake_app(intake_pool), "intake") as http:
        yield http


@pytest.fixture
async def workflow_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


@pytest.fixture
async def ticket(workflow_pool: asyncpg.Pool) -> str:
    event = ticket_created()
    await open_in_workflow(workflow_pool, event)
    return event.key


@pytest.fixture
async def workflow(workflow_pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    async with client(await workflow_app(workflow_pool), "workflow") as http:
        yield http


@pytest.fixture
async def sla(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        service_store(database_url, "sla") as pool,
        client(await sla_app(pool), "sla") as http,
    ):
        yield http


async def stored(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM events"))


def refusal_of(answer: httpx.Response, status: int = 422) -> dict[str, Any]:
    """The first entry of a 422's detail, after checking the status and the answer's size."""
    assert answer.status_code == status, answer.text[:500]
    assert len(answer.content) < SMALL, len(answer.content)
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail, detail
    first: dict[str, Any] = detail[0]
    return first


FIELDS = [
    "policy_id",
    "request_type",
    "priority",
    "subject",
    "description",
    "organisation_id",
    "requester",
    "participants",
    "product_version",
    "company",
    "contact",
    "error_message",
    "language",
]


@pytest.mark.parametrize("field", FIELDS)
async def test_a_lone_surrogate_in_any_field_of_a_request_is_refused_naming_it(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool, field: str
) -> None:
    value: Any = ["bruno\ud800@acme.example"] if field == "participants" else "ab\ud800cd"
    body = json.dumps(submission(**{field: value}))  # ASCII: the escape "\ud800" is sent
    answer = await intake.post("/requests", content=body, headers=JSON)
    refused = refusal_of(answer)
    assert refused["loc"][:2] == ["body", field]
    assert "lone surrogate" in refused["msg"]
    assert await stored(intake_pool) == 0


@pytest.mark.parametrize(
    ("command", "field", "extra"),
    [
        ("request-information", "comment", {}),
        ("add-comment", "body", {}),
        ("change-priority", "reason", {"priority": "medium"}),
        ("wait-for-third-party", "party", {}),
        ("resolve", "resolution_code", {"comment": "fixed"}),
        ("link-request", "linked_key", {}),
        ("add-participant", "participant_id", {}),
        ("assign", "assignee_id", {}),
    ],
)
async def test_a_lone_surrogate_in_a_command_is_refused_naming_the_field(
    workflow: httpx.AsyncClient, ticket: str, command: str, field: str, extra: dict[str, str]
) -> None:
    body = json.dumps({**extra, field: "ab\udfffcd"})
    answer = await workflow.post(
        f"/requests/{ticket}/{command}", content=body, headers={**AGENT, **JSON}
    )
    refused = refusal_of(answer)
    assert refused["loc"] == ["body", field] and "lone surrogate" in refused["msg"]
    after = await workflow.get(f"/requests/{ticket}", headers=AGENT)
    assert after.json()["version"] == 1


@pytest.mark.parametrize(
    ("method", "target", "loc"),
    [
        ("GET", "/requests/%00", ["path"]),
        ("GET", "/requests/SUP-%ED%A0%80", ["path"]),
        ("GET", "/requests/%FF%FE", ["path"]),
        ("POST", "/requests/%00/qualify", ["path"]),
        ("GET", "/requests?organisation_id=%00", ["query", "organisation_id"]),
        ("GET", "/requests?policy_id=%ED%A0%80", ["query", "policy_id"]),
    ],
)
async def test_nul_and_invalid_text_in_a_workflow_path_or_query_are_refused(
    workflow: httpx.AsyncClient, method: str, target: str, loc: list[str]
) -> None:
    assert refusal_of(await workflow.request(method, target, headers=AGENT))["loc"] == loc


@pytest.mark.parametrize(
    ("target", "loc"),
    [
        ("/tickets/%00/clocks", ["path"]),
        ("/tickets/%ED%B0%80/clocks", ["path"]),
        ("/board?policy_id=saas%00desk", ["query", "policy_id"]),
    ],
)
async def test_nul_and_invalid_text_in_an_sla_path_or_query_are_refused(
    sla: httpx.AsyncClient, target: str, loc: list[str]
) -> None:
    assert refusal_of(await sla.get(target))["loc"] == loc


@pytest.mark.parametrize(
    ("method", "target", "loc"),
    [("GET", "/surveys/%00", ["path"]), ("POST", "/requests?x=%00", ["query", "x"])],
)
async def test_nul_in_an_intake_path_or_query_is_refused(
    intake: httpx.AsyncClient, method: str, target: str, loc: list[str]
) -> None:
    assert refusal_of(await intake.request(method, target))["loc"] == loc


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Idempotency-Key", b"key-\x00"),
        ("Idempotency-Key", b"key-\xed\xa0\x80"),
        ("X-Correlation-Id", b"\xff\xfe"),
        ("X-Actor-Role", b"requester\x00"),
        ("Authorization", b"Bearer eyJ\x00"),
        ("Authorization", b"Bearer \xed\xa0\x80"),
    ],
)
async def test_nul_and_invalid_text_in_a_header_are_refused(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool, name: str, value: bytes
) -> None:
    answer = await intake.post("/requests", json=submission(), headers={name: value})
    assert refusal_of(answer)["loc"] == ["header", name.lower()]
    assert await stored(intake_pool) == 0


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ("1e99999", ["body"]),
        ('{"policy_id": NaN}', ["body", "policy_id"]),
        ('{"participants": [Infinity]}', ["body", "participants", 0]),
        ('{"subject": "ok", "priority": -1e400}', ["body", "priority"]),
    ],
)
async def test_non_finite_numbers_are_refused_naming_where(
    intake: httpx.AsyncClient, body: str, loc: list[object]
) -> None:
    answer = await intake.post("/requests", content=body, headers=JSON)
    refused = refusal_of(answer)
    assert refused["loc"] == loc and "finite" in refused["msg"]


async def test_a_non_finite_rating_is_refused(workflow: httpx.AsyncClient, ticket: str) -> None:
    answer = await workflow.post(
        f"/requests/{ticket}/answer-survey", content='{"rating": NaN}', headers={**AGENT, **JSON}
    )
    assert refusal_of(answer)["loc"] == ["body", "rating"]


async def test_a_300_mb_body_is_refused_before_it_is_read(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool
) -> None:
    """Streamed in chunks (no Content-Length): refused once 1 MiB is passed, the rest unread."""
    pulled = 0

    async def flood() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"description": "'
        chunk = b"x" * (64 * 1024)
        for _ in range(300 * MiB // len(chunk)):
            pulled += len(chunk)
            yield chunk

    started = time.monotonic()
    answer = await intake.post("/requests", content=flood(), headers=JSON)
    assert answer.status_code == 413
    assert len(answer.content) < SMALL
    assert pulled <= MiB + 64 * 1024  # stopped reading at the limit
    assert time.monotonic() - started < 5
    assert await stored(intake_pool) == 0


async def test_a_declared_300_mb_body_is_refused_without_reading_it(
    intake: httpx.AsyncClient,
) -> None:
    pulled = 0

    async def flood() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(300):
            pulled += MiB
            yield b"x" * MiB

    headers = {**JSON, "content-length": str(300 * MiB)}
    answer = await intake.post("/requests", content=flood(), headers=headers)
    assert answer.status_code == 413 and len(answer.content) < SMALL
    assert pulled <= MiB


async def test_a_large_invalid_body_is_refused_without_echoing_it(
    intake: httpx.AsyncClient,
) -> None:
    too_long = "x" * 900_000
    cases = [
        submission(description=too_long),
        {**submission(), "y" * 200_000: 1},  # an unknown field with a long name
        submission(participants=[f"p{n}@acme.example" for n in range(20_000)]),
        submission(requester=too_long[:300_000]),
    ]
    for body in cases:
        answer = await intake.post("/requests", json=body)
        assert answer.status_code == 422 and len(answer.content) < SMALL, answer.text[:200]
        assert "xxxxxxxxxx" * 10 not in answer.text and "yyyyyyyyyy" * 10 not in answer.text


async def test_a_participant_address_of_a_megabyte_is_refused(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool
) -> None:
    huge = "a" * (1200 * 1024) + "@acme.example"
    over_limit = await intake.post("/requests", json=submission(participants=[huge]))
    assert over_limit.status_code == 413 and len(over_limit.content) < SMALL
    long = "a" * 900_000 + "@acme.example"
    refused = refusal_of(await intake.post("/requests", json=submission(participants=[long])))
    assert refused["loc"][:2] == ["body", "participants"]
    assert await stored(intake_pool) == 0


async def test_a_comment_of_a_megabyte_is_refused(workflow: httpx.AsyncClient, ticket: str) -> None:
    huge = {"body": "x" * (1200 * 1024)}
    over_limit = await workflow.post(f"/requests/{ticket}/add-comment", json=huge, headers=AGENT)
    assert over_limit.status_code == 413 and len(over_limit.content) < SMALL
    long = {"body": "x" * 100_001}
    refused = await workflow.post(f"/requests/{ticket}/add-comment", json=long, headers=AGENT)
    assert refusal_of(refused)["loc"] == ["body", "body"]
    after = await workflow.get(f"/requests/{ticket}", headers=AGENT)
    assert after.json()["version"] == 1


async def test_a_request_whose_event_would_not_fit_in_a_kafka_record_is_refused(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool
) -> None:
    """Every field within its bounds and the body under 1 MiB, but the event's JSON (control
    characters are escaped six bytes each) over MAX_EVENT_BYTES: 413, nothing stored."""
    body = submission(description="😀" * 100_000, error_message="\x01" * 100_000)
    content = json.dumps(body, ensure_ascii=False).encode()
    assert len(content) < MiB
    answer = await intake.post("/requests", content=content, headers=JSON)
    assert answer.status_code == 413, answer.text[:300]
    assert f"more than the {MAX_EVENT_BYTES} allowed" in answer.json()["detail"]
    assert await stored(intake_pool) == 0


NOT_ADDRESSES = [
    "x@acme.example\r\nBcc: evil@evil.example",
    "not an address",
    "<script>",
    "../../etc/passwd",
    "Anne Martin <anne@acme.example>",
    "anne@acme.example, bruno@acme.example",
]


@pytest.mark.parametrize("text", NOT_ADDRESSES)
async def test_what_is_not_an_address_is_refused_as_a_requester_or_participant(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool, text: str
) -> None:
    for field, value in (("requester", text), ("participants", [text])):
        refused = refusal_of(await intake.post("/requests", json=submission(**{field: value})))
        assert refused["loc"][:2] == ["body", field]
        assert "is not an e-mail address" in refused["msg"]
    assert await stored(intake_pool) == 0


@pytest.mark.parametrize("text", NOT_ADDRESSES)
async def test_what_is_not_an_address_cannot_be_assigned(
    workflow: httpx.AsyncClient, ticket: str, text: str
) -> None:
    answer = await workflow.post(
        f"/requests/{ticket}/assign", json={"assignee_id": text}, headers=AGENT
    )
    refused = refusal_of(answer)
    assert refused["loc"][:2] == ["body", "assignee_id"]
    assert "is not an e-mail address" in refused["msg"]
    after = await workflow.get(f"/requests/{ticket}", headers=AGENT)
    assert after.json()["assignee_id"] is None and after.json()["version"] == 1


async def test_addresses_are_kept_in_lower_case(workflow: httpx.AsyncClient, ticket: str) -> None:
    answer = await workflow.post(
        f"/requests/{ticket}/assign", json={"assignee_id": " Paul@Desk.Example "}, headers=AGENT
    )
    assert answer.status_code == 200, answer.text
    after = await workflow.get(f"/requests/{ticket}", headers=AGENT)
    assert after.json()["assignee_id"] == "paul@desk.example"


async def test_a_refusal_quoting_a_path_stays_short(workflow: httpx.AsyncClient) -> None:
    answer = await workflow.get("/requests/" + "k" * 10_000, headers=AGENT)
    assert answer.status_code == 404 and len(answer.content) < SMALL


async def test_a_body_of_many_tiny_values_is_refused_before_validation(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool
) -> None:
    """90,000 keys in under 1 MiB: refused by the edge, not handed to the validators (which
    would list 90,000 unknown fields while every other request waits)."""
    body = json.dumps({f"k{n}": 1 for n in range(90_000)}, separators=(",", ":"))
    assert len(body) < MiB
    answer = await intake.post("/requests", content=body, headers=JSON)
    refused = refusal_of(answer)
    assert refused["loc"] == ["body"] and "more than 10000 values" in refused["msg"]
    assert len(answer.content) < SMALL
    assert await stored(intake_pool) == 0


async def test_a_body_that_trickles_in_is_refused_with_408(
    intake: httpx.AsyncClient, intake_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(edge, "BODY_SECONDS", 0.5)
    sent_all = False

    async def trickle() -> AsyncIterator[bytes]:
        nonlocal sent_all
        yield b'{"description": "'
        await asyncio.sleep(5)
        sent_all = True
        yield b'x"}'

    started = time.monotonic()
    answer = await intake.post("/requests", content=trickle(), headers=JSON)
    assert answer.status_code == 408, answer.text
    assert "did not arrive within 0.5 s" in answer.json()["detail"][0]["msg"]
    assert time.monotonic() - started < 4 and not sent_all
    assert await stored(intake_pool) == 0
