"""The account life cycle through the whole system, over real SMTP: staff invite a person ->
activation mail -> the person chooses a password, signs in, creates a request through the
portal and sees it; someone registering alone sees no request until staff link them; a reset;
a lockout. The portal signs who calls; intake and workflow believe nothing else."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from e2e_support import isolated_system
from portal_support import Browser, MailFolder
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
LEA = "lea@desk.example"  # team lead of erp-vendor in the demo directory


@pytest.fixture(scope="module")
def system(database_url: str, kafka_bootstrap: str, tmp_path_factory: Any) -> Iterator[System]:
    state = tmp_path_factory.mktemp("accounts")
    with isolated_system(database_url, kafka_bootstrap, state, "accounts") as running:
        yield running


@pytest.fixture
async def browsers(system: System) -> AsyncIterator[Any]:
    made: list[httpx.AsyncClient] = []

    def browser() -> Browser:
        client = httpx.AsyncClient(base_url=system.url("portal"), timeout=30)
        made.append(client)
        return Browser(client)

    yield browser
    for client in made:
        await client.aclose()


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def request_for(requester: str) -> dict[str, Any]:
    return {
        "policy_id": "erp-vendor", "request_type": "support", "priority": "medium",
        "subject": "Invoice export fails", "description": "Error 500 on export",
        "organisation_id": "acme", "requester": requester, "language": "en",
    }  # fmt: skip


async def activate(browser: Browser, mail: MailFolder, email: str, password: str) -> None:
    link = await mail.link_to(email)
    token = link.rpartition("=")[2]
    answer = await browser.submit(path_of(link), "/activate", token=token, password=password)
    assert answer.status_code == 303, answer.text


async def test_invited_person_signs_in_creates_a_request_and_sees_it(
    system: System, browsers: Any
) -> None:
    mail = MailFolder(system.mail_folder)
    lea = browsers()
    assert (await lea.sign_in(LEA, system.demo_password)).status_code == 303
    invited = await lea.client.post(
        "/admin/people",
        json={"email": "zoe@acme.example", "profile": {"name": "Zoé", "language": "fr"},
              "organisation_id": "acme"},
        headers={"X-CSRF-Token": await lea.csrf()},
    )  # fmt: skip
    assert invited.status_code == 201, invited.text

    zoe = browsers()
    await activate(zoe, mail, "zoe@acme.example", "zoe-secret-123")
    csrf = {"X-CSRF-Token": await zoe.csrf(), "Idempotency-Key": "zoe-1"}

    async def create() -> httpx.Response:
        return await zoe.client.post(
            "/api/intake/requests", json=request_for("zoe@acme.example"), headers=csrf
        )

    answer = await create()
    assert answer.status_code == 201, answer.text
    ticket = answer.json()["ticket_id"]

    async def seen() -> httpx.Response:
        return await zoe.client.get(f"/api/workflow/requests/{ticket}")

    found = await _retry(seen, lambda a: a.status_code == 200)
    assert found.json()["subject"] == "Invoice export fails"
    # straight to the service, without the portal's signature: refused
    direct = httpx.get(f"{system.url('workflow')}/requests/{ticket}",
                       headers={"X-Actor": "zoe@acme.example", "X-Actor-Role": "requester",
                                "X-Actor-Organisation": "acme"})  # fmt: skip
    assert direct.status_code == 401


async def test_registering_alone_gives_access_once_staff_link_the_person(
    system: System, browsers: Any
) -> None:
    mail = MailFolder(system.mail_folder)
    yann = browsers()
    registered = await yann.submit("/register", "/register", name="Yann", email="yann@acme.example")
    assert registered.status_code == 200
    await activate(yann, mail, "yann@acme.example", "yann-secret-123")
    assert 'id="pending"' in (await yann.client.get("/")).text
    csrf = {"X-CSRF-Token": await yann.csrf()}
    refused = await yann.client.post(
        "/api/intake/requests", json=request_for("yann@acme.example"), headers=csrf
    )
    assert refused.status_code == 403, refused.text

    lea = browsers()
    await lea.sign_in(LEA, system.demo_password)
    linked = await lea.client.put(
        "/admin/people/yann@acme.example/organisation",
        json={"organisation_id": "acme"},
        headers={"X-CSRF-Token": await lea.csrf()},
    )
    assert linked.status_code == 200

    async def create() -> httpx.Response:
        return await yann.client.post(
            "/api/intake/requests", json=request_for("yann@acme.example"),
            headers={**csrf, "Idempotency-Key": "yann-1"},
        )  # fmt: skip

    assert (await _retry(create, lambda a: a.status_code == 201)).status_code == 201


async def test_reset_then_lockout(system: System, browsers: Any) -> None:
    mail = MailFolder(system.mail_folder)
    anne = browsers()
    await anne.submit("/reset", "/reset", email="anne@acme.example")
    link = await mail.link_to("anne@acme.example")
    token = link.rpartition("=")[2]
    chosen = await anne.submit(
        path_of(link), "/reset/choose", token=token, password="anne-new-1234"
    )
    assert chosen.status_code == 303
    assert (await browsers().sign_in("anne@acme.example", system.demo_password)).status_code == 401
    stranger = browsers()
    for _ in range(4):
        assert (await stranger.sign_in("anne@acme.example", "guess-1234")).status_code == 401
    assert (await stranger.sign_in("anne@acme.example", "anne-new-1234")).status_code == 429


async def _retry(call: Any, done: Any, timeout: float = 30.0) -> httpx.Response:
    """`call()`'s answer once `done` with it (the directory reaches every service within
    seconds), or its last one after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        answer: httpx.Response = await call()
        if done(answer) or time.monotonic() > deadline:
            return answer
        await asyncio.sleep(0.3)
