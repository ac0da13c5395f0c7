"""The portal's satisfaction-survey pages against intake's survey API, each on the real
PostgreSQL server: the page needs no sign-in and records nothing when opened; the five faces
are a radio group with a text label each; answering once thanks, again says it was answered;
a forged link gets 403, an expired one 410, a bad rating or comment the form again (422); the
CSRF token of the browser (no session) is checked."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from identity_support import verifier
from portal_support import Browser
from service_support import service_store

from desk_platform.identity import new_signing_key
from desk_platform.survey_tokens import SurveyClaim, make_token
from desk_policies.loader import load_policies
from intake.adapters.http import create_app as intake_app
from intake.adapters.survey import survey_router
from portal.app import create_app

pytestmark = pytest.mark.integration
POLICIES = load_policies()
SECRET = "test-survey-secret"
NOW = datetime.now(UTC)


@dataclass
class World:
    intake: asyncpg.Pool
    transport: httpx.ASGITransport

    def browser(self) -> Browser:
        return Browser(httpx.AsyncClient(transport=self.transport, base_url="http://portal.test"))


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with (
        service_store(database_url, "intake") as intake,
        service_store(database_url, "portal") as portal,
    ):
        survey = survey_router(intake, POLICIES, SECRET, lambda: NOW)
        api = intake_app(intake, POLICIES, lambda: NOW, "http://workflow", routers=[survey],
                         verifier=verifier("intake"))  # fmt: skip
        to_intake = httpx.AsyncClient(transport=httpx.ASGITransport(app=api))

        async def unused(*_: object) -> None: ...

        app = create_app(
            portal, POLICIES, lambda: NOW, [new_signing_key()], unused,
            services={"intake": "http://intake"}, client=to_intake,
        )  # fmt: skip
        yield World(intake, httpx.ASGITransport(app=app))
        await to_intake.aclose()


def token(language: str = "fr", secret: str = SECRET, days: int = 30) -> str:
    claim = SurveyClaim(
        ticket_id=str(uuid.uuid4()),
        key="PRB-1001",
        policy_id="saas-desk",
        respondent="anne@acme.example",
        language=language,
        expires_at=NOW + timedelta(days=days),
    )
    return make_token(secret, claim)


async def answers(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM survey_answers"))


async def test_the_page_shows_five_labelled_faces_and_records_nothing(world: World) -> None:
    visitor = world.browser()
    link = f"/survey/{token()}"
    for _ in range(3):  # a mail scanner, a preview, the person
        page = await visitor.client.get(link)
        assert page.status_code == 200, page.text
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<html lang="fr">' in html and "PRB-1001" in html
    assert "<fieldset" in html and "<legend>" in html
    assert html.count('type="radio"') == 5 and all(face in html for face in "😠🙁😐🙂😀")
    for label in ("Pas du tout satisfait", "Très satisfait"):
        assert label in html
    assert '<textarea id="comment" name="comment"' in html
    assert "sign-out" not in html  # nobody is signed in
    assert await answers(world.intake) == 0


async def test_answering_thanks_then_says_it_was_answered(world: World) -> None:
    visitor = world.browser()
    link = f"/survey/{token('en')}"
    sent = await visitor.submit(link, link, rating="4", comment="Quick\nand clear")
    assert sent.status_code == 200, sent.text
    assert "Thank you" in sent.text and "4 out of 5" in sent.text
    shown = await visitor.client.get(link)
    assert shown.status_code == 200 and "already rated" in shown.text
    assert 'type="radio"' not in shown.text
    row = await world.intake.fetchrow("SELECT rating, comment FROM survey_answers")
    assert (row["rating"], row["comment"]) == (4, "Quick\nand clear")


async def test_a_second_sending_gets_409(world: World) -> None:
    visitor = world.browser()
    link = f"/survey/{token('en')}"
    csrf = await visitor.form_token(link)
    first = await visitor.client.post(link, data={"rating": "5", "csrf": csrf})
    second = await visitor.client.post(link, data={"rating": "1", "csrf": csrf})
    assert first.status_code == 200
    assert second.status_code == 409 and "already rated" in second.text
    assert await answers(world.intake) == 1


@pytest.mark.parametrize("rating", ["", "0", "6", "five", "٣", "-1"])
async def test_a_rating_off_the_scale_gets_the_form_again(world: World, rating: str) -> None:
    link = f"/survey/{token('en')}"
    sent = await world.browser().submit(link, link, rating=rating, comment="kept")
    assert sent.status_code == 422
    assert 'id="rating-error"' in sent.text and "from 1 to 5" in sent.text
    assert ">kept</textarea>" in sent.text
    assert await answers(world.intake) == 0


@pytest.mark.parametrize("comment", ["a\x00b", "x" * 4001, "y" * 20_000, "\x07bell"])
async def test_a_hostile_comment_gets_the_form_again(world: World, comment: str) -> None:
    link = f"/survey/{token('en')}"
    sent = await world.browser().submit(link, link, rating="5", comment=comment)
    assert sent.status_code == 422
    assert 'id="comment-error"' in sent.text
    assert await answers(world.intake) == 0


async def test_without_the_forms_token_nothing_is_recorded(world: World) -> None:
    visitor = world.browser()
    link = f"/survey/{token('en')}"
    await visitor.client.get(link)
    sent = await visitor.client.post(link, data={"rating": "5", "csrf": "guessed"})
    assert sent.status_code == 403 and "form expired" in sent.text
    assert await answers(world.intake) == 0


@pytest.mark.parametrize(
    "forged", [token(secret="someone-elses"), "not-a-token", "x" * 2000, token()[:-2] + "zz"]
)
async def test_a_forged_link_gets_403(world: World, forged: str) -> None:
    visitor = world.browser()
    shown = await visitor.client.get(f"/survey/{forged}?lang=en")
    assert shown.status_code == 403 and "not valid" in shown.text
    sent = await visitor.client.post(f"/survey/{forged}", data={"rating": "5"})
    assert sent.status_code == 403
    assert await answers(world.intake) == 0


async def test_an_expired_link_gets_410_saying_when(world: World) -> None:
    old = token("fr", days=-1)
    shown = await world.browser().client.get(f"/survey/{old}")
    assert shown.status_code == 410
    day = f"{NOW - timedelta(days=1):%Y-%m-%d}"
    assert re.search(rf"a expiré le {day}", shown.text), shown.text
