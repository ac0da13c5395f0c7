"""The console's administration and canned replies editor in a real browser, on the whole
system: Léa (lead of every desk) invites a person, grants them a role and reads it in their
history, is told why her own account is not hers to change, edits the organisations; she writes
a canned reply with its live preview and sees it listed; staff who do not lead a desk get 403
pages. Every page passes axe-core and breaks no rule of the Content-Security-Policy, in French
and in English, the refused variants included."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from playwright.sync_api import Browser, Page, expect
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
LEA = "lea@desk.example"
PEOPLE = "/console/admin/people"


def submit(page: Page, button: str) -> None:
    """Send the form of `button` (a selector) and wait for the page that answers."""
    with page.expect_navigation():
        page.locator(button).first.click()


def test_a_lead_grants_a_role_and_reads_it_in_the_history(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    email = f"nina-{uuid.uuid4().hex[:8]}@acme.example"
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        page.goto(f"{PEOPLE}?lang=fr")
        rows = page.locator("#people tbody tr[data-email]")
        assert rows.count() >= 8, page.locator("main").inner_text()  # the demonstration people
        assert page.locator("#people tbody tr[data-email='anne@acme.example']").count() == 1
        assert_accessible(page)
        screenshot(page, "console-people", tmp_path)

        # an address that has an account already: refused beside the field, typed values kept
        page.fill("#invite-name", "Anne encore")
        page.fill("#invite-email", "anne@acme.example")
        submit(page, "#invite-form button[type=submit]")
        expect(page.locator("#invite-error")).to_be_visible()
        expect(page.locator("#invite-email")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#invite-name")).to_have_value("Anne encore")
        assert_accessible(page)

        page.fill("#invite-name", "Nina Neuve")
        page.fill("#invite-email", email)
        page.select_option("#invite-organisation", "acme")
        submit(page, "#invite-form button[type=submit]")
        assert page.url.endswith("?done=invited"), page.url
        expect(page.locator("main h1")).to_have_text("Nina Neuve")
        expect(page.locator("#person-status")).to_contain_text("Invitée")

        page.select_option("#grant-form select[name=desk]", "erp-vendor")
        page.select_option("#grant-form select[name=role]", "product_expert")
        submit(page, "#grant-form button[type=submit]")
        assert page.url.endswith("?done=granted"), page.url
        expect(page.locator("[role=status]")).to_contain_text("Rôle attribué")
        newest = page.locator("#person-history li").first
        expect(newest).to_contain_text("Rôle Expert produit attribué dans ERP vendor")
        expect(newest).to_contain_text(f"par {LEA}")
        expect(page.locator("#person-roles tbody tr")).to_have_count(1)
        assert_accessible(page)

        # a role the chosen desk does not have: the rule's reason beside the grant form
        page.select_option("#grant-form select[name=desk]", "saas-desk")
        page.select_option("#grant-form select[name=role]", "product_expert")
        submit(page, "#grant-form button[type=submit]")
        expect(page.locator("#grant-error")).to_contain_text("n'est pas un rôle de SaaS")
        assert_accessible(page)

        page.goto(f"{PEOPLE}/{email}?lang=en")
        expect(page.locator("#person-history li").first).to_contain_text(
            "Role Product expert granted at ERP vendor"
        )
        assert_accessible(page)
        page.goto(f"{PEOPLE}?lang=en&q=nina")
        expect(page.locator("#people tbody tr[data-email]")).to_have_count(1)
        assert_accessible(page)

        # her own account: no form, and why
        for language in ("fr", "en"):
            page.goto(f"{PEOPLE}/{LEA}?lang={language}")
            expect(page.locator("#manage-why")).to_be_visible()
            expect(page.locator("#grant-why")).to_be_visible()
            assert page.locator("#deactivate-form, #grant-form").count() == 0
            assert_accessible(page)


def test_a_lead_of_every_desk_edits_the_organisations(browser: Browser, system: System) -> None:
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        page.goto("/console/admin/organisations?lang=fr")
        expect(page.locator("#organisations tbody tr[data-organisation=acme]")).to_have_count(1)
        assert_accessible(page)
        page.locator("#organisations a[href*='edit=globex']").click()
        expect(page.locator("#organisation-id")).to_have_value("globex")
        page.fill("#organisation-domains", "globex.example\nnot a domain")
        submit(page, "#organisation-form button[type=submit]")
        expect(page.locator("#organisation-domains")).to_have_attribute("aria-invalid", "true")
        assert_accessible(page)
        page.goto("/console/admin/organisations?lang=en&edit=globex")
        assert_accessible(page)


def test_a_lead_writes_a_canned_reply_and_sees_it_listed(browser: Browser, system: System) -> None:
    title = f"Résolue {uuid.uuid4().hex[:6]}"
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        page.goto("/console/replies/erp-vendor?lang=fr")
        assert_accessible(page)
        page.select_option("#reply-language", "fr")
        page.fill("#reply-title", "   ")
        page.fill("#reply-text", "Bonjour {requester},\nla demande {key} est résolue.\n{agent}")
        expect(page.locator("#reply-preview")).to_contain_text("la demande SPT-1042 est résolue")
        expect(page.locator("#reply-preview")).to_contain_text("Bonjour Anne Martin")
        submit(page, "#reply-form button[type=submit]")  # a blank title: refused beside it
        expect(page.locator("#reply-title")).to_have_attribute("aria-invalid", "true")
        expect(page.locator("#reply-title-error")).to_be_visible()
        expect(page.locator("#reply-text")).to_have_value(re.compile(r"la demande \{key\}"))
        assert_accessible(page)

        page.fill("#reply-title", title)
        submit(page, "#reply-form button[type=submit]")
        assert page.url.endswith("?done=created"), page.url
        listed = page.locator("#replies li[data-reply-id]", has_text=title)
        expect(listed).to_have_count(1)
        expect(listed).to_contain_text("{requester}")
        assert_accessible(page)

        page.fill("#reply-title", title)  # the same title again: refused
        page.fill("#reply-text", "Autre texte")
        submit(page, "#reply-form button[type=submit]")
        expect(page.locator("#reply-title-error")).to_be_visible()
        page.goto("/console/replies/erp-vendor?lang=en")
        listed.locator("a").click()
        expect(page.locator("#reply-title")).to_have_value(title)
        assert_accessible(page)


@pytest.mark.parametrize(("email", "desk"), [("paul@desk.example", "erp-vendor"),
                                             ("max@desk.example", "saas-desk")])  # fmt: skip
def test_staff_who_do_not_lead_a_desk_get_403_on_its_replies(
    browser: Browser, system: System, email: str, desk: str
) -> None:
    for language in ("fr", "en"):
        with watched_page(browser, system.url("portal"), language) as watched:
            page = watched.page
            sign_in(page, email, system.demo_password)
            answer = page.goto(f"/console/replies/{desk}?lang={language}")
            assert answer is not None and answer.status == 403
            expect(page.locator("#refusal")).to_be_visible()
            assert_accessible(page)
            if email == "paul@desk.example":  # leads no desk: no administration either
                answer = page.goto(f"{PEOPLE}?lang={language}")
                assert answer is not None and answer.status == 403
                assert_accessible(page)
            else:  # leads erp-vendor and cloud-partner: reads the organisations, no form
                page.goto(f"/console/admin/organisations?lang={language}")
                expect(page.locator("#organisations-why")).to_be_visible()
                assert page.locator("#organisation-form").count() == 0
                assert_accessible(page)
