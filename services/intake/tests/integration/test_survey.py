"""The satisfaction survey's pages against intake's app and the real PostgreSQL server:
opening the link records nothing, submitting records once (SurveySubmitted on the ticket's
stream, for workflow), a second submission gets 409, expired and forged links are refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from identity_support import bearer, verifier
from service_support import service_store

from desk_contracts.requests import SurveySubmitted
from desk_eventstore.store import read_stream
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.loader import load_policies
from intake.adapters.http import create_app
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


def client(pool: asyncpg.Pool, now: datetime = NOW) -> httpx.AsyncClient:
    app = create_app(
        pool,
        POLICIES,
        lambda: now,
        "http://workflow",
        routers=[survey_router(pool, POLICIES, SECRET, lambda: now)],
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


async def test_opening_the_link_only_shows_the_five_face_form(pool: asyncpg.Pool) -> None:
    link = f"/survey/{token()}"
    async with client(pool) as http:
        for _ in range(3):  # a mail scanner, a preview, the person
            page = await http.get(link)
            assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert '<html lang="fr">' in html and "PRB-1001" in html
    assert html.count('type="radio" name="rating"') == 5
    assert all(face in html for face in "😠🙁😐🙂😀")
    assert '<textarea name="comment"' in html and 'method="post"' in html
    assert await events(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM survey_answers") == 0


async def test_submitting_records_the_rating_once_for_workflow(pool: asyncpg.Pool) -> None:
    ticket_id = str(uuid.uuid4())
    link = f"/survey/{token('en', ticket_id=ticket_id)}"
    async with client(pool) as http:
        sent = await http.post(link, data={"rating": "4", "comment": "Quick and clear"})
        assert sent.status_code == 200, sent.text
        assert "Thank you" in sent.text and "4 out of 5" in sent.text

        again = await http.post(link, data={"rating": "1"})
        assert again.status_code == 409
        assert "already rated" in again.text and '<html lang="en">' in again.text

        reopened = await http.get(link)
        assert reopened.status_code == 200 and "already rated" in reopened.text
        assert 'type="radio"' not in reopened.text

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
        sent = await http.post(f"/survey/{token(ticket_id=ticket_id)}", data={"rating": "5"})
        assert sent.status_code == 200
    async with pool.acquire() as conn:
        stream = await read_stream(conn, ticket_id)
    assert [(r.stream_version, r.event_type) for r in stream] == [
        (1, "TicketCreated"),
        (2, "SurveySubmitted"),
    ]


@pytest.mark.parametrize("rating", ["0", "6", "", "five", "-1", "²", "4" * 5000, "٣"])
async def test_a_rating_off_the_scale_is_refused_and_records_nothing(
    pool: asyncpg.Pool, rating: str
) -> None:
    async with client(pool) as http:
        refused = await http.post(f"/survey/{token()}", data={"rating": rating})
    assert refused.status_code == 422
    assert "1 à 5" in refused.text and 'type="radio"' in refused.text
    assert await events(pool) == []


@pytest.mark.parametrize(("language", "says"), [("fr", "pas de champ"), ("en", "has no field")])
async def test_a_field_the_form_does_not_have_is_refused_naming_it(
    pool: asyncpg.Pool, language: str, says: str
) -> None:
    async with client(pool) as http:
        refused = await http.post(
            f"/survey/{token(language)}", data={"rating": "5", "respondent": "eve@evil.example"}
        )
    assert refused.status_code == 422
    assert f"{says} &#x27;respondent&#x27;" in refused.text and "rating, comment" in refused.text
    assert 'type="radio"' in refused.text  # the form again
    assert await events(pool) == []


async def test_a_flood_instead_of_a_form_is_refused_before_it_is_read(
    pool: asyncpg.Pool,
) -> None:
    async with client(pool) as http:
        flood = await http.post(f"/survey/{token()}", data={"rating": "5", "comment": "x" * 70_000})
        nul = await http.post(f"/survey/{token()}", data={"rating": "5", "comment": "a\x00b"})
    assert flood.status_code == 413
    assert nul.status_code == 200  # the NUL is dropped, the answer kept
    assert await events(pool) == ["SurveySubmitted"]


async def test_an_expired_link_is_refused_clearly(pool: asyncpg.Pool) -> None:
    link = f"/survey/{token()}"
    async with client(pool, now=CLOSED_AT + timedelta(days=31)) as http:
        shown = await http.get(link)
        sent = await http.post(link, data={"rating": "5"})
    for page in (shown, sent):
        assert page.status_code == 410
        assert "expired on 2026-04-01" in page.text and "a expiré" in page.text
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
async def test_a_forged_link_is_refused_clearly(pool: asyncpg.Pool, forged: str) -> None:
    async with client(pool) as http:
        shown = await http.get(f"/survey/{forged}")
        sent = await http.post(f"/survey/{forged}", data={"rating": "5"})
    for page in (shown, sent):
        assert page.status_code == 403
        assert "not valid" in page.text and "pas valide" in page.text
    assert await events(pool) == []
