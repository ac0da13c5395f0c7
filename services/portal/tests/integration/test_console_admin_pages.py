"""The console's administration and canned replies pages on the real PostgreSQL server, through
an ASGI client as a browser sends them: a lead of erp-vendor invites a customer, grants and
revokes a role of their desk, is refused a role of a desk they do not administer, cannot change
their own account nor another desk's staff, reads the organisations without changing them; the
canned replies of their desk are created, refused twice under one title, changed and deleted,
and nobody but the desk's leads comes in."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from portal_support import ADMIN, ADMIN_PASSWORD, Browser, seed_directory
from service_support import service_store

from desk_contracts import directory as d
from desk_platform.identity import new_signing_key
from desk_policies.loader import load_policies
from portal.app import create_app
from portal.application import canned, credentials
from portal.application.directory import account, record
from portal.application.people import Mail
from portal.domain.accounts import Account

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
PAUL, PAUL_PASSWORD = "paul@desk.example", "paul-password-123"
SAM = "sam@desk.example"  # staff of saas-desk only, which Léa does not administer
PEOPLE = "/console/admin/people"
REPLIES = "/console/replies/erp-vendor"


@dataclass
class World:
    pool: asyncpg.Pool
    transport: httpx.ASGITransport
    sent: list[Mail] = field(default_factory=list)

    async def browser(self, email: str, password: str) -> Browser:
        person = Browser(httpx.AsyncClient(transport=self.transport, base_url="http://p"))
        assert (await person.sign_in(email, password)).status_code == 303
        return person

    async def person(self, email: str) -> Account | None:
        async with self.pool.acquire() as conn:
            return await account(conn, email)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    async with service_store(database_url, "portal") as pool:
        await seed_directory(pool, NOW)
        async with pool.acquire() as conn:
            await record(conn, [
                d.PersonInvited(occurred_at=NOW, by="import", email=PAUL,
                                profile=d.Profile(name="Paul Agent", language="en")),
                d.PersonActivated(occurred_at=NOW, by="import", email=PAUL),
                d.RoleGranted(occurred_at=NOW, by="import", email=PAUL, desk_id="erp-vendor",
                              role="service_desk"),
                d.PersonInvited(occurred_at=NOW, by="import", email=SAM,
                                profile=d.Profile(name="Sam Saas")),
                d.PersonActivated(occurred_at=NOW, by="import", email=SAM),
                d.RoleGranted(occurred_at=NOW, by="import", email=SAM, desk_id="saas-desk",
                              role="agent"),
                d.PersonInvited(occurred_at=NOW, by="import", email="bruno@acme.example",
                                profile=d.Profile(name="Bruno Keller"), organisation_id="acme"),
            ])  # fmt: skip
            await credentials.set_password(conn, PAUL, PAUL_PASSWORD, NOW)
        sent: list[Mail] = []

        async def send(mail: Mail) -> None:
            sent.append(mail)

        app = create_app(pool, load_policies(), lambda: datetime.now(UTC), [new_signing_key()],
                         send, services={})  # fmt: skip
        yield World(pool, httpx.ASGITransport(app=app), sent)


async def roles_of(world: World, email: str) -> dict[str, tuple[str, ...]]:
    async with world.pool.acquire() as conn:
        found = await account(conn, email)
    assert found is not None
    return dict(found.roles)


def emails_listed(page: str) -> list[str]:
    return re.findall(r'<tr data-email="([^"]+)"', page)


async def test_a_lead_invites_a_customer_and_grants_then_revokes_a_role_of_their_desk(
    world: World,
) -> None:
    lea = await world.browser(ADMIN, ADMIN_PASSWORD)
    listed = await lea.client.get(PEOPLE)
    assert listed.status_code == 200, listed.text
    assert 'id="invite-form"' in listed.text
    # customers and erp-vendor's staff; not Sam, who works at a desk Léa does not administer
    assert set(emails_listed(listed.text)) == {ADMIN, PAUL, "bruno@acme.example"}
    found = await lea.client.get(PEOPLE, params={"q": "BRUNO"})
    assert emails_listed(found.text) == ["bruno@acme.example"]

    invited = await lea.submit(
        PEOPLE, PEOPLE, name="Zoé Client", email="Zoe@Acme.example", language="fr",
        organisation="acme", role="",
    )  # fmt: skip
    assert invited.status_code == 303, invited.text
    page = invited.headers["location"]
    assert page == f"{PEOPLE}/zoe@acme.example?done=invited"
    assert [(m.to, m.kind) for m in world.sent] == [("zoe@acme.example", "activate")]
    shown = await lea.client.get(page)
    assert shown.status_code == 200
    assert 'role="status"' in shown.text and "Invitation envoyée" in shown.text
    assert 'id="person-status">Invitée' in shown.text
    assert "ACME SA" in shown.text and 'id="grant-form"' in shown.text

    person = f"{PEOPLE}/zoe@acme.example"
    granted = await lea.submit(person, f"{person}/grant", desk="erp-vendor", role="rnd")
    assert granted.status_code == 303, granted.text
    assert granted.headers["location"] == f"{person}?done=granted"
    assert await roles_of(world, "zoe@acme.example") == {"erp-vendor": ("rnd",)}
    shown = await lea.client.get(person)
    history = re.findall(r'<li data-change="(\w+)">([^\n]*)</li>', shown.text)
    assert [change for change, _ in history] == ["RoleGranted", "PersonInvited"]
    assert "Rôle R&amp;D attribué dans ERP vendor" in history[0][1]
    assert f"par {ADMIN}" in history[0][1]
    assert 'action="/console/admin/people/zoe%40acme.example/revoke"' in shown.text

    revoked = await lea.submit(person, f"{person}/revoke", desk="erp-vendor", role="rnd")
    assert revoked.status_code == 303
    assert await roles_of(world, "zoe@acme.example") == {}

    # invited with a role of the desk at once
    expert = await lea.submit(
        PEOPLE, PEOPLE, name="Eve Expert", email="eve@desk.example", language="en",
        organisation="", role="erp-vendor:product_expert",
    )  # fmt: skip
    assert expert.status_code == 303, expert.text
    assert await roles_of(world, "eve@desk.example") == {"erp-vendor": ("product_expert",)}


async def test_a_role_of_a_desk_the_lead_does_not_administer_is_refused(world: World) -> None:
    lea = await world.browser(ADMIN, ADMIN_PASSWORD)
    person = f"{PEOPLE}/bruno@acme.example"
    refused = await lea.submit(person, f"{person}/grant", desk="saas-desk", role="agent")
    assert refused.status_code == 403
    assert 'id="grant-error"' in refused.text
    assert "Vous n&#39;administrez pas le desk SaaS ticketing desk" in refused.text
    assert 'id="grant-form"' in refused.text  # the form again, beside its reason
    customer_side = await lea.submit(person, f"{person}/grant", desk="erp-vendor", role="requester")
    assert customer_side.status_code == 422
    nowhere = await lea.submit(person, f"{person}/grant", desk="x" * 5000, role="agent")
    assert nowhere.status_code == 422  # bounded: not a desk, not a 500
    assert await roles_of(world, "bruno@acme.example") == {}
    # the grant form offers erp-vendor's support roles only
    offered = await lea.client.get(person)
    assert re.findall(r'<select id="grant-desk" name="desk"[^>]*>\s*<option value="([^"]+)"',
                      offered.text) == ["erp-vendor"]  # fmt: skip

    invite = await lea.submit(
        PEOPLE, PEOPLE, name="Not Here", email="nothere@acme.example", language="fr",
        organisation="acme", role="saas-desk:agent",
    )  # fmt: skip
    assert invite.status_code == 403
    assert 'id="invite-role"' in invite.text and 'aria-invalid="true"' in invite.text
    assert 'value="Not Here"' in invite.text  # what was typed is kept
    assert await world.person("nothere@acme.example") is None and world.sent == []
    again = await lea.submit(
        PEOPLE, PEOPLE, name="Bruno", email="bruno@acme.example", language="fr",
        organisation="nowhere", role="",
    )  # fmt: skip
    assert again.status_code == 422 and "Il n&#39;existe pas d&#39;organisation" in again.text


async def test_a_lead_cannot_change_their_own_account_nor_another_desk_s_staff(
    world: World,
) -> None:
    lea = await world.browser(ADMIN, ADMIN_PASSWORD)
    own = f"{PEOPLE}/{ADMIN}"
    shown = await lea.client.get(own)
    assert shown.status_code == 200
    assert 'id="deactivate-form"' not in shown.text and 'id="grant-form"' not in shown.text
    assert 'id="manage-why"' in shown.text and "votre propre organisation" in shown.text
    assert 'id="grant-why"' in shown.text and "vos propres rôles" in shown.text
    refused = await lea.submit(own, f"{own}/deactivate")
    assert refused.status_code == 403 and 'id="status-error"' in refused.text
    async with world.pool.acquire() as conn:
        lea_now = await account(conn, ADMIN)
    assert lea_now is not None and lea_now.status == "active"
    own_role = await lea.submit(own, f"{own}/revoke", desk="erp-vendor", role="team_lead")
    assert own_role.status_code == 403
    assert await roles_of(world, ADMIN) == {"erp-vendor": ("team_lead",)}

    sam = f"{PEOPLE}/{SAM}"
    other = await lea.client.get(sam)
    assert other.status_code == 404 and "saas-desk" not in other.text  # not hers to read
    deactivated = await lea.submit(f"{PEOPLE}/bruno@acme.example", f"{sam}/deactivate")
    assert deactivated.status_code == 404
    forged = await lea.client.post(f"{PEOPLE}/bruno@acme.example/deactivate", data={})
    assert forged.status_code == 403  # no CSRF token
    async with world.pool.acquire() as conn:
        bruno = await account(conn, "bruno@acme.example")
    assert bruno is not None and bruno.status == "invited"
    done = await lea.submit(f"{PEOPLE}/bruno@acme.example", f"{PEOPLE}/bruno@acme.example/unlink")
    assert done.status_code == 303
    assert (await lea.client.get(f"{PEOPLE}/nobody@acme.example")).status_code == 404


async def test_organisations_are_read_by_leads_and_changed_by_who_administers_every_desk(
    world: World,
) -> None:
    lea = await world.browser(ADMIN, ADMIN_PASSWORD)  # erp-vendor's lead only
    listed = await lea.client.get("/console/admin/organisations")
    assert listed.status_code == 200
    assert 'id="organisations"' in listed.text and "ACME SA" in listed.text
    assert 'id="organisation-form"' not in listed.text
    assert 'id="organisations-why"' in listed.text
    refused = await lea.submit(
        "/console/admin/organisations", "/console/admin/organisations",
        organisation_id="initech", name="Initech", domains="initech.example",
    )  # fmt: skip
    assert refused.status_code == 403
    async with world.pool.acquire() as conn:
        for desk, role in (("cloud-partner", "team_lead"), ("saas-desk", "supervisor")):
            await record(conn, [d.RoleGranted(occurred_at=NOW, by="import", email=ADMIN,
                                              desk_id=desk, role=role)])  # fmt: skip
    form = await lea.client.get("/console/admin/organisations?edit=acme")
    assert 'id="organisation-form"' in form.text and "acme.example</textarea>" in form.text
    bad = await lea.submit(
        "/console/admin/organisations", "/console/admin/organisations",
        organisation_id="initech", name="Initech", domains="not a domain!",
    )  # fmt: skip
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.text
    saved = await lea.submit(
        "/console/admin/organisations", "/console/admin/organisations",
        organisation_id="initech", name="Initech Inc.",
        domains="initech.example\nMail.Initech.example",
    )  # fmt: skip
    assert saved.status_code == 303
    listed = await lea.client.get("/console/admin/organisations")
    assert "initech.example, mail.initech.example" in listed.text
    twice = await lea.submit(
        "/console/admin/organisations", "/console/admin/organisations",
        organisation_id="initech", name="Other", domains="",
    )  # fmt: skip
    assert twice.status_code == 409  # a new organisation does not overwrite one


async def test_staff_who_lead_no_desk_are_refused_the_administration(world: World) -> None:
    paul = await world.browser(PAUL, PAUL_PASSWORD)
    refused = await paul.client.get(PEOPLE)
    assert refused.status_code == 403 and "you administer no desk" in refused.text
    assert (await paul.client.get("/console/admin/organisations")).status_code == 403
    assert (await paul.client.get(f"{PEOPLE}/{ADMIN}")).status_code == 403


async def test_a_lead_writes_the_canned_replies_of_their_desk(world: World) -> None:
    lea = await world.browser(ADMIN, ADMIN_PASSWORD)
    page = await lea.client.get(REPLIES)
    assert page.status_code == 200
    assert 'id="reply-form"' in page.text and "{requester}" in page.text
    body = "Bonjour {requester},\r\nvotre demande {key} est résolue.\r\n{agent}"
    created = await lea.submit(REPLIES, REPLIES, language="fr", title="Résolue", body=body)
    assert created.status_code == 303, created.text
    assert created.headers["location"] == f"{REPLIES}?done=created"
    listed = await lea.client.get(REPLIES)
    ids = re.findall(r'<li data-reply-id="([0-9a-f-]+)">', listed.text)
    assert len(ids) == 1 and "Résolue" in listed.text

    twice = await lea.submit(REPLIES, REPLIES, language="fr", title="Résolue", body="Autre")
    assert twice.status_code == 409
    assert 'aria-invalid="true" aria-describedby="reply-title-error"' in twice.text
    assert ">Autre</textarea>" in twice.text  # what was typed is kept
    blank = await lea.submit(REPLIES, REPLIES, language="fr", title="   ", body="x")
    assert blank.status_code == 422 and 'id="reply-title-error"' in blank.text
    empty = await lea.submit(REPLIES, REPLIES, language="en", title="Hello", body=" ")
    assert empty.status_code == 422 and 'id="reply-text-error"' in empty.text

    preview = await lea.client.post(
        f"{REPLIES}/preview", headers={"HX-Request": "true"},
        data={"csrf": await lea.form_token(REPLIES), "language": "fr", "title": "",
              "body": "Demande {key} de {requester} ({desk})"},
    )  # fmt: skip
    assert preview.status_code == 200 and "<html" not in preview.text
    assert "Demande SPT-1042 de Anne Martin (ERP vendor Customer Services)" in preview.text

    edit = f"{REPLIES}?edit={ids[0]}"
    form = await lea.client.get(edit)
    assert f'action="{REPLIES}/{ids[0]}"' in form.text
    changed = await lea.submit(edit, f"{REPLIES}/{ids[0]}", language="fr", title="Résolue",
                               body="Merci {requester}")  # fmt: skip
    assert changed.status_code == 303
    async with world.pool.acquire() as conn:
        kept = await canned.replies_of(conn, "erp-vendor")
    assert [(r.title, r.body, r.changed_by) for r in kept] == [
        ("Résolue", "Merci {requester}", ADMIN)
    ]
    gone = await lea.submit(REPLIES, f"{REPLIES}/{ids[0]}/delete")
    assert gone.status_code == 303
    assert (await lea.submit(REPLIES, f"{REPLIES}/{ids[0]}/delete")).status_code == 404
    async with world.pool.acquire() as conn:
        assert await canned.replies_of(conn, "erp-vendor") == []

    assert (await lea.client.get("/console/replies/saas-desk")).status_code == 403  # not hers
    assert (await lea.client.get("/console/replies/nowhere")).status_code == 404


async def test_staff_who_do_not_lead_the_desk_get_403_on_its_replies(world: World) -> None:
    paul = await world.browser(PAUL, PAUL_PASSWORD)
    refused = await paul.client.get(REPLIES)
    assert refused.status_code == 403 and 'id="refusal"' in refused.text
    token = await paul.form_token("/profile")
    sent = await paul.client.post(
        REPLIES, data={"csrf": token, "language": "en", "title": "Mine", "body": "x"}
    )
    assert sent.status_code == 403
    async with world.pool.acquire() as conn:
        assert await canned.replies_of(conn, "erp-vendor") == []
