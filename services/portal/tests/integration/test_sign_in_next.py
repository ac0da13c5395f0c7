"""A page that needs sign-in sends the visitor to `/sign-in?next=<the page>`, and signing in
(by password or by a mailed link) lands on that page; a `next` that is not a page of this site
lands on the home page. Real PostgreSQL and a real SMTP server."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from portal_support import ADMIN, ADMIN_PASSWORD, Browser, Mailbox, seed_directory
from service_support import service_store

from desk_platform.identity import new_signing_key
from desk_policies.loader import load_policies
from portal.adapters.mailer import Mailer
from portal.app import create_app

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
BASE = "http://portal.test"


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Mailbox, Browser]]:
    async with service_store(database_url, "portal") as pool:
        await seed_directory(pool, NOW)
        with Mailbox(tmp_path / "mail") as mailbox:
            mailer = Mailer("127.0.0.1", mailbox.port, "support@desk.example", BASE)
            app = create_app(
                pool, load_policies(), lambda: datetime.now(UTC), [new_signing_key()],
                mailer.send, services={},
            )  # fmt: skip
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
            yield mailbox, Browser(client)


@pytest.mark.parametrize(
    ("page", "sent_to"),
    [
        ("/profile", "/sign-in?next=/profile"),
        ("/tokens?lang=fr", "/sign-in?next=/tokens%3Flang%3Dfr"),
        ("/", "/sign-in"),
    ],
)
async def test_a_page_needing_sign_in_sends_there_with_next(
    world: tuple[Mailbox, Browser], page: str, sent_to: str
) -> None:
    _, visitor = world
    answer = await visitor.client.get(page)
    assert answer.status_code == 303
    assert answer.headers["location"] == sent_to


async def test_signing_in_by_password_lands_on_the_page_asked_for(
    world: tuple[Mailbox, Browser],
) -> None:
    _, visitor = world
    asked = (await visitor.client.get("/tokens")).headers["location"]
    form = await visitor.client.get(asked)
    assert '<input type="hidden" name="next" value="/tokens">' in form.text
    assert 'href="/sign-in/link?next=/tokens"' in form.text
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token
    fields = {"email": ADMIN, "password": ADMIN_PASSWORD, "next": "/tokens", "csrf": token[1]}
    signed = await visitor.client.post("/sign-in", data=fields)
    assert (signed.status_code, signed.headers["location"]) == (303, "/tokens")
    assert (await visitor.client.get("/tokens")).status_code == 200
    # signed in already: the sign-in page goes straight on
    again = await visitor.client.get("/sign-in?next=/profile")
    assert (again.status_code, again.headers["location"]) == (303, "/profile")


@pytest.mark.parametrize(
    "elsewhere",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example",
     "javascript:alert(1)", "/" + "a" * 3000],
)  # fmt: skip
async def test_a_next_elsewhere_lands_on_the_home_page(
    world: tuple[Mailbox, Browser], elsewhere: str
) -> None:
    _, visitor = world
    form = await visitor.client.get("/sign-in", params={"next": elsewhere})
    assert 'name="next"' not in form.text
    signed = await visitor.submit(
        "/sign-in", "/sign-in", email=ADMIN, password=ADMIN_PASSWORD, next=elsewhere
    )
    assert (signed.status_code, signed.headers["location"]) == (303, "/")


async def test_a_mailed_sign_in_link_lands_on_the_page_asked_for(
    world: tuple[Mailbox, Browser],
) -> None:
    mailbox, visitor = world
    asked = await visitor.submit("/sign-in/link?next=/profile", "/sign-in/link", email=ADMIN,
                                 next="/profile")  # fmt: skip
    assert asked.status_code == 200
    body = (await mailbox.wait_for(ADMIN)).get_content()
    link = re.search(r"https?://\S+\?token=\S+", body)
    assert link and "&next=/profile" in link[0], body
    parts = urlsplit(link[0])
    opened = await visitor.client.get(f"{parts.path}?{parts.query}")
    assert '<input type="hidden" name="next" value="/profile">' in opened.text
    token = unquote(parts.query.split("&")[0].removeprefix("token="))
    used = await visitor.submit(
        f"{parts.path}?{parts.query}", "/sign-in/link/use", token=token, next="/profile"
    )
    assert (used.status_code, used.headers["location"]) == (303, "/profile")
