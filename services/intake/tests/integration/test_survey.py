"""The satisfaction survey's JSON API against intake's app and the real PostgreSQL server:
reading the link records nothing, answering records once (SurveySubmitted on the ticket's
stream, for workflow), a second answer gets 409, expired (410) and forged (403) links are
refused, and a bad rating, comment or field gets 422 naming it; each answer recorded is counted
by desk and rating."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from prometheus_client import CollectorRegistry
from service_support import service_store

from desk_contracts.requests import SurveySubmitted
from desk_eventstore.store import read_stream
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.loader import load_policies
from intake.adapters.http import create_app
from intake.adapters.metrics import SurveyMetrics
from intake.adapters.survey import survey_router
from intake.bootstrap import topic_for

pytestmark = pytest.mark.integration

POLICIES = load_policies()
SECRET = "test-survey-secret"
CLOSED_AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = CLOSED_AT + timedelta(days=2)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "intake") as pool:
        yield pool


def client(
    pool: asyncpg.Pool,
    now: datetime = NOW,
    answered: Callable[[str, int], None] = lambda desk, rating: None,
) -> httpx.AsyncClient:
    app = create_app(
        pool,
        POLICIES,
        lambda: now,
        "http://workflow",
        routers=[survey_router(pool, POLICIES, SECRET, lambda: now, answered)],
        verifier=verifier("intake"),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://intake")


def token(language: str = "fr", secret: str = SECRET, ticket_id: str | None = None) -> str:
    claim = SurveyClaim(
        ticket_id=ticket_id or str(uuid.uuid4()),
        key="PRB-1001",
        policy_id="saas-desk",
        respondent="anne@acme.example",
        language=language,
        expires_at=CLOSED_AT + timedelta(days=30),
    )
    return make_token(secret, claim)


async def events(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT event_type FROM events ORDER BY global_position")
    return [row["event_type"] for row in rows]


async def test_reading_the_link_records_nothing(pool: asyncpg.Pool) -> None:
    link = f"/surveys/{token()}"
    async with client(pool) as http:
        for _ in range(3):  # a mail scanner, a preview, the person
            shown = await http.get(link)
            assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert shown.headers["referrer-policy"] == "no-referrer"
    survey = shown.json()
    assert (survey["key"], survey["scale"], survey["language"]) == ("PRB-1001", 5, "fr")
    assert survey["answered"] is False and survey["answered_at"] is None
    assert await events(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM survey_answers") == 0


async def test_answering_records_the_rating_once_for_workflow(pool: asyncpg.Pool) -> None:
    ticket_id = str(uuid.uuid4())
    link = f"/surveys/{token('en', ticket_id=ticket_id)}"
    registry = CollectorRegistry()
    metrics = SurveyMetrics(registry, POLICIES)
    async with client(pool, answered=metrics.answered) as http:
        sent = await http.post(link, json={"rating": 4, "comment": "Quick and clear"})
        assert sent.status_code == 201, sent.text
        assert sent.json() == {"key": "PRB-1001", "rating": 4, "scale": 5}
        assert sent.headers["cache-control"] == "no-store"

        again = await http.post(link, json={"rating": 1})
        assert again.status_code == 409
        assert again.json()["answered_at"].startswith("2026-03-04")

        reread = (await http.get(link)).json()
        assert reread["answered"] is True and reread["rating"] == 4

    answers = "desk_survey_answers_total"
    assert registry.get_sample_value(answers, {"desk": "saas-desk", "rating": "4"}) == 1
    assert registry.get_sample_value(answers, {"desk": "saas-desk", "rating": "1"}) is None

    async with pool.acquire() as conn:
        stream = await read_stream(conn, ticket_id)
    assert [r.event_type for r in stream] == ["SurveySubmitted"]
    assert topic_for(stream[0]) == "ticket-commands"
    answered = stream[0].to_event()
    assert isinstance(answered, SurveySubmitted)
    assert (answered.respondent_id, answered.rating, answered.comment) == (
        "anne@acme.example",
        4,
        "Quick and clear",
    )
    assert answered.occurred_at == NOW


async def test_the_answer_follows_the_requests_creation_on_its_stream(pool: asyncpg.Pool) -> None:
    async with client(pool) as http:
        created = await http.post(
            "/requests",
            json={
                "policy_id": "saas-desk",
                "request_type": "problem_report",
                "priority": "high",
                "subject": "Export fails",
                "description": "Error 500",
                "organisation_id": "acme",
                "requester": "anne@acme.example",
            },
            headers=bearer("anne@acme.example", audience="intake", organisation="acme"),
        )
        assert created.status_code == 201, created.text
        ticket_id = created.json()["ticket_id"]
        sent = await http.post(f"/surveys/{token(ticket_id=ticket_id)}", json={"rating": 5})
        assert sent.status_code == 201
    async with pool.acquire() as conn:
        stream = await read_stream(conn, ticket_id)
    assert [(r.stream_version, r.event_type) for r in stream] == [
        (1, "TicketCreated"),
        (2, "SurveySubmitted"),
    ]


@pytest.mark.parametrize("rating", [0, 6, -1, "5", "five", None, 4.5, True, 10**30])
async def test_a_rating_off_the_scale_is_refused_and_records_nothing(
    pool: asyncpg.Pool, rating: object
) -> None:
    async with client(pool) as http:
        refused = await http.post(f"/surveys/{token()}", json={"rating": rating})
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"][:2] == ["body", "rating"]
    assert await events(pool) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"rating": 5, "comment": "a\\u0000b"}',
        '{"rating": 5, "comment": "a\\ud800b"}',
        '{"rating": 5, "comment": "' + "x" * 100_000 + '"}',
        '{"rating": 5, "comment": 42}',
    ],
    ids=["NUL", "lone surrogate", "100k characters", "not a text"],
)
async def test_a_hostile_comment_is_refused_and_records_nothing(
    pool: asyncpg.Pool, body: str
) -> None:
    async with client(pool) as http:
        refused = await http.post(
            f"/surveys/{token()}", content=body, headers={"content-type": "application/json"}
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["loc"][:2] == ["body", "comment"]
    assert await events(pool) == []


async def test_a_field_the_answer_does_not_have_is_refused_naming_it(pool: asyncpg.Pool) -> None:
    async with client(pool) as http:
        refused = await http.post(
            f"/surveys/{token()}", json={"rating": 5, "respondent": "eve@evil.example"}
        )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "respondent"]
    assert await events(pool) == []


async def test_an_expired_link_is_refused_saying_when(pool: asyncpg.Pool) -> None:
    link = f"/surveys/{token()}"
    async with client(pool, now=CLOSED_AT + timedelta(days=31)) as http:
        shown = await http.get(link)
        sent = await http.post(link, json={"rating": 5})
    for answer in (shown, sent):
        assert answer.status_code == 410
        assert answer.json()["expired_at"].startswith("2026-04-01")
    assert await events(pool) == []


@pytest.mark.parametrize(
    "forged",
    [
        token(secret="someone-elses-secret"),
        token()[:-3] + "abc",
        "not-a-token",
        token().split(".")[0],
    ],
)
async def test_a_forged_link_is_refused(pool: asyncpg.Pool, forged: str) -> None:
    async with client(pool) as http:
        shown = await http.get(f"/surveys/{forged}")
        sent = await http.post(f"/surveys/{forged}", json={"rating": 5})
    for answer in (shown, sent):
        assert answer.status_code == 403
        assert "survey link" in answer.json()["detail"]
    assert await events(pool) == []
