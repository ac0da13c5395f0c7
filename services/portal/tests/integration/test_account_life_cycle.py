"""The account life cycle on the real PostgreSQL and a real SMTP server: invite -> activation
mail -> choose a password -> signed in; registering alone -> pending until linked; reset;
sign-in by link; lockout; CSRF; API tokens; the identity the portal signs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from portal_support import ADMIN, ADMIN_PASSWORD, Browser, Mailbox, seed_directory
from service_support import service_store

from desk_platform.identity import Verifier, new_signing_key
from desk_policies.loader import load_policies
from portal.adapters.mailer import Mailer
from portal.app import create_app

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
BASE = "http://portal.test"


@dataclass
class World:
    mailbox: Mailbox
    transport: httpx.ASGITransport

    def browser(self) -> Browser:
        return Browser(httpx.AsyncClient(transport=self.transport, base_url=BASE))


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with service_store(database_url, "portal") as pool:
        await seed_directory(pool, NOW)
        with Mailbox(tmp_path / "mail") as mailbox:
            mailer = Mailer("127.0.0.1", mailbox.port, "support@desk.example", BASE)
            app = create_app(
                pool, load_policies(), lambda: datetime.now(UTC), [new_signing_key()],
                mailer.send, services={},
            )  # fmt: skip
            yield World(mailbox, httpx.ASGITransport(app=app))


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def test_invited_person_activates_signs_in_and_gets_a_signed_identity(world: World) -> None:
    admin = world.browser()
    assert (await admin.sign_in(ADMIN, ADMIN_PASSWORD)).status_code == 303
    cookie = admin.client.cookies.jar
    session = next(c for c in cookie if c.name == "desk_session")
    assert (
        session.has_nonstandard_attr("HttpOnly")
        and session.get_nonstandard_attr("SameSite") == "lax"
    )
    invited = await admin.client.post(
        "/admin/people",
        json={"email": "Carla@Acme.example", "profile": {"name": "Carla", "language": "en"},
              "organisation_id": "acme"},
        headers={"X-CSRF-Token": await admin.csrf()},
    )  # fmt: skip
    assert invited.status_code == 201, invited.text
    assert invited.json()["status"] == "invited"

    carla = world.browser()
    link = await world.mailbox.link_to("carla@acme.example")
    assert (await carla.client.get(path_of(link))).status_code == 200
    token = link.rpartition("=")[2]
    chosen = await carla.submit(path_of(link), "/activate", token=token, password="carla-secret-1")
    assert chosen.status_code == 303
    assert chosen.headers["location"] == "/"  # signed in, on the home page
    home = await carla.client.get("/")
    assert "Welcome, Carla" in home.text and "ACME SA" in home.text
    # the link was single-use
    again = await world.browser().submit("/sign-in", "/activate", token=token, password="x" * 12)
    assert again.status_code == 410

    signed = await carla.client.post(
        "/identity/token", json={"audience": "intake"}, headers={"X-CSRF-Token": await carla.csrf()}
    )
    assert signed.status_code == 200, signed.text
    keys = (await carla.client.get("/.well-known/jwks.json")).json()

    async def published(_source: str) -> dict[str, object]:
        return keys

    identity = await Verifier("jwks", "intake", fetch=published).verify(signed.json()["token"])
    assert (identity.subject, identity.organisation, dict(identity.roles)) == (
        "carla@acme.example", "acme", {},
    )  # fmt: skip
    history = (await admin.client.get("/admin/people/carla@acme.example/history")).json()
    assert [(h["change"], h["by"]) for h in history] == [
        ("PersonInvited", ADMIN), ("PersonActivated", "carla@acme.example"),
    ]  # fmt: skip


async def test_a_person_registering_alone_waits_until_staff_link_them(world: World) -> None:
    dan = world.browser()
    answer = await dan.submit("/register", "/register", name="Dan", email="dan@initech.example")
    assert answer.status_code == 200 and "a message is on its way" in answer.text
    link = await world.mailbox.link_to("dan@initech.example")
    token = link.rpartition("=")[2]
    assert (await dan.submit(path_of(link), "/activate", token=token,
                             password="dan-secret-12")).status_code == 303  # fmt: skip
    home = await dan.client.get("/")
    assert 'id="pending"' in home.text and "contact support" in home.text.lower()
    signed = await dan.client.post(
        "/identity/token", json={"audience": "workflow"}, headers={"X-CSRF-Token": await dan.csrf()}
    )
    claims = signed.json()["token"]
    assert claims  # a token, but naming no organisation and no role (services grant nothing)

    admin = world.browser()
    await admin.sign_in(ADMIN, ADMIN_PASSWORD)
    linked = await admin.client.put(
        "/admin/people/dan@initech.example/organisation",
        json={"organisation_id": "acme"},
        headers={"X-CSRF-Token": await admin.csrf()},
    )
    assert linked.status_code == 200 and linked.json()["organisation_id"] == "acme"
    assert 'id="pending"' not in (await dan.client.get("/")).text

    # registering a known address again tells its owner, not the caller
    again = await world.browser().submit(
        "/register", "/register", name="X", email="dan@initech.example"
    )
    assert again.status_code == 200 and "a message is on its way" in again.text
    known = await world.mailbox.wait_for("dan@initech.example", 2)
    assert known["Subject"] == "You already have an account"


async def test_reset_replaces_the_password_and_ends_other_sessions(world: World) -> None:
    old = world.browser()
    await old.sign_in(ADMIN, ADMIN_PASSWORD)
    asking = world.browser()
    answer = await asking.submit("/reset", "/reset", email=ADMIN)
    assert "a message is on its way" in answer.text
    unknown = await world.browser().submit("/reset", "/reset", email="nobody@acme.example")
    assert unknown.status_code == answer.status_code and "a message is on its way" in unknown.text
    link = await world.mailbox.link_to(ADMIN)
    token = link.rpartition("=")[2]
    done = await asking.submit(
        path_of(link), "/reset/choose", token=token, password="new-password-42"
    )
    assert done.status_code == 303
    assert (await old.client.get("/")).headers.get("location") == "/sign-in"  # signed out
    assert (await world.browser().sign_in(ADMIN, ADMIN_PASSWORD)).status_code == 401
    assert (await world.browser().sign_in(ADMIN, "new-password-42")).status_code == 303


async def test_sign_in_by_mailed_link(world: World) -> None:
    person = world.browser()
    await person.submit("/sign-in/link", "/sign-in/link", email=ADMIN)
    link = await world.mailbox.link_to(ADMIN)
    token = link.rpartition("=")[2]
    assert (await person.client.get(path_of(link))).status_code == 200  # a button, not signed in
    assert (await person.client.get("/")).headers.get("location") == "/sign-in"
    used = await person.submit(path_of(link), "/sign-in/link/use", token=token)
    assert used.status_code == 303
    assert "Bienvenue" in (await person.client.get("/")).text  # Léa reads French
    again = await world.browser().submit("/sign-in", "/sign-in/link/use", token=token)
    assert again.status_code == 410  # single use


async def test_links_are_mailed_a_few_times_an_hour_at_most(world: World) -> None:
    asking = world.browser()
    for _ in range(7):
        answer = await asking.submit("/reset", "/reset", email=ADMIN)
        assert answer.status_code == 200 and "a message is on its way" in answer.text
    await asyncio.sleep(0.5)
    assert len(world.mailbox.messages(ADMIN)) == 5


async def test_repeated_failures_lock_known_and_unknown_addresses_alike(world: World) -> None:
    for address in (ADMIN, "ghost@acme.example"):
        browser = world.browser()
        answers = [(await browser.sign_in(address, "wrong-password")).status_code for _ in range(5)]
        assert answers == [401] * 5
        locked = await browser.sign_in(address, ADMIN_PASSWORD)
        assert locked.status_code == 429 and "Too many failed attempts" in locked.text


async def test_forms_and_json_calls_need_the_csrf_token(world: World) -> None:
    browser = world.browser()
    await browser.client.get("/sign-in")
    forged = await browser.client.post(
        "/sign-in", data={"email": ADMIN, "password": ADMIN_PASSWORD}
    )
    assert forged.status_code == 403
    await browser.sign_in(ADMIN, ADMIN_PASSWORD)
    unprotected = await browser.client.post(
        "/admin/organisations", json={"organisation_id": "x", "name": "X"}
    )
    assert unprotected.status_code == 403
    hostile = await browser.submit("/register", "/register", name="A\x00B", email="a@acme.example")
    assert hostile.status_code == 422


async def test_api_tokens_are_shown_once_scoped_and_revocable(world: World) -> None:
    owner = world.browser()
    await owner.sign_in(ADMIN, ADMIN_PASSWORD)
    made = await owner.client.post(
        "/me/tokens", json={"label": "script", "scope": "read", "days": 30},
        headers={"X-CSRF-Token": await owner.csrf()},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    secret, token_id = made.json()["token"], made.json()["token_id"]
    listed = (await owner.client.get("/me/tokens")).json()
    assert [t["label"] for t in listed] == ["script"] and secret not in str(listed)

    script = httpx.AsyncClient(transport=world.transport, base_url=BASE,
                               headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
    assert (await script.get("/me")).json()["email"] == ADMIN
    read_only = await script.post(
        "/admin/organisations", json={"organisation_id": "x", "name": "X"}
    )
    assert read_only.status_code == 403
    more = await script.post("/me/tokens", json={"label": "more"})
    assert more.status_code == 403  # tokens are made from a signed-in session only
    revoked = await owner.client.delete(
        f"/me/tokens/{token_id}", headers={"X-CSRF-Token": await owner.csrf()}
    )
    assert revoked.status_code == 204
    assert (await script.get("/me")).status_code == 401


async def test_only_administrators_change_people(world: World) -> None:
    admin = world.browser()
    await admin.sign_in(ADMIN, ADMIN_PASSWORD)
    csrf = {"X-CSRF-Token": await admin.csrf()}
    await admin.client.post(
        "/admin/people",
        headers=csrf,
        json={
            "email": "bruno@acme.example",
            "profile": {"name": "Bruno"},
            "organisation_id": "acme",
        },
    )
    link = await world.mailbox.link_to("bruno@acme.example")
    bruno = world.browser()
    await bruno.submit(path_of(link), "/activate", token=link.rpartition("=")[2],
                       password="bruno-secret-1")  # fmt: skip
    refused = await bruno.client.post(
        "/admin/people/bruno@acme.example/roles",
        json={"desk_id": "erp-vendor", "role": "team_lead"},
        headers={"X-CSRF-Token": await bruno.csrf()},
    )
    assert refused.status_code == 403
    other_desk = await admin.client.post(
        "/admin/people/bruno@acme.example/roles", json={"desk_id": "saas-desk", "role": "agent"},
        headers=csrf,
    )  # fmt: skip
    assert other_desk.status_code == 403  # Léa administers erp-vendor only
    granted = await admin.client.post(
        "/admin/people/bruno@acme.example/roles", json={"desk_id": "erp-vendor", "role": "rnd"},
        headers=csrf,
    )  # fmt: skip
    assert granted.json()["roles"] == {"erp-vendor": ["rnd"]}
    gone = await admin.client.post("/admin/people/bruno@acme.example/deactivate", headers=csrf)
    assert gone.json()["status"] == "deactivated"
    assert (await bruno.client.get("/")).headers.get("location") == "/sign-in"


async def test_a_desk_lead_changes_only_the_people_of_the_desks_they_administer(
    world: World,
) -> None:
    admin = world.browser()
    await admin.sign_in(ADMIN, ADMIN_PASSWORD)
    csrf = {"X-CSRF-Token": await admin.csrf()}
    organisation = await admin.client.post(
        "/admin/organisations", headers=csrf,
        json={"organisation_id": "acme", "name": "ACME", "domains": ["gmail.com"]},
    )  # fmt: skip
    assert organisation.status_code == 403  # Léa administers erp-vendor, not every desk
    bad = await admin.client.post(
        "/admin/organisations", headers=csrf, json={"organisation_id": "x", "name": "X",
                                                    "domains": ["not a domain"]},
    )  # fmt: skip
    assert bad.status_code == 422
    herself = await admin.client.put(
        f"/admin/people/{ADMIN}/organisation", headers=csrf, json={"organisation_id": "acme"}
    )
    assert herself.status_code == 403
    nobody = await admin.client.post("/admin/people/nobody@acme.example/deactivate", headers=csrf)
    assert nobody.status_code == 404
