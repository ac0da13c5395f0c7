"""The console's search in a real browser, on the whole system: staff find a request by a word
that only one of its internal comments holds, in another inflection (French stemming), narrow
the results by desk and status, find a request by its key; a refused value is shown beside
its field; every page passes axe-core and breaks no rule of the Content-Security-Policy, in
French and in English. Requests are created through intake's API as the demonstration
customer, staff steps sent to workflow's API with a staff token."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from filing_support import as_lead, file_request
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"
PAUL = "paul@desk.example"  # staff of the three desks
STAFF = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"], "saas-desk": ["supervisor"]}
RESULTS = "#search-results tbody tr[data-key]"


def create(system: System, desk: str, subject: str) -> str:
    """A request of Anne's at `desk`, made through intake; its key once workflow has it."""
    return file_request(
        system, desk, subject, description="Depuis la mise à jour, la sauvegarde s'arrête."
    )


def searched(page: Page) -> list[str]:
    """The keys the results show, in their order."""
    return [row.get_attribute("data-key") or "" for row in page.locator(RESULTS).all()]


def submit(page: Page) -> None:
    with page.expect_navigation():
        page.locator("#search-form button[type=submit]").click()


def test_staff_find_a_request_by_a_word_of_a_comment_then_narrow_by_desk_and_status(
    browser: Browser, system: System, tmp_path: Any
) -> None:
    tag = f"lot{uuid.uuid4().hex[:8]}"  # a word only this test's requests hold
    cloud = create(system, "cloud-partner", f"Sauvegarde {tag}")
    erp = create(system, "erp-vendor", f"Facturation {tag}")
    qualified = create(system, "erp-vendor", f"Export {tag}")
    assert as_lead(system, "POST", f"/requests/{qualified}/qualify", {}).status_code == 200
    note = "Les onduleurs de la salle serveur ont été remplacés"
    noted = as_lead(system, "POST", f"/requests/{erp}/add-comment", {"body": note, "public": False})
    assert noted.status_code == 200, noted.text
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, PAUL, system.demo_password)
        page.goto("/console/search?lang=fr")
        assert page.locator("h1").inner_text() == "Rechercher des demandes"
        assert page.locator(".console-nav a[aria-current=page]").get_attribute("href") == (
            "/console/search"
        )
        page.fill("#q", "onduleur remplacé")  # the comment says "onduleurs", "remplacés"
        submit(page)
        assert searched(page) == [erp]
        assert "1" in page.locator("#search-count").inner_text()
        row = page.locator(f"{RESULTS}[data-key='{erp}']")
        assert row.locator(f"a[href='/console/requests/{erp}']").count() == 1
        assert row.locator("mark").first.inner_text() == "onduleurs"
        assert "Qualifié" not in row.inner_text() and "Ouvert" in row.inner_text()
        assert_accessible(page)
        page.fill("#q", tag)
        submit(page)
        assert set(searched(page)) == {cloud, erp, qualified}
        page.select_option("#desk", "erp-vendor")
        submit(page)
        assert set(searched(page)) == {erp, qualified}
        page.select_option("#status", "qualified")  # the statuses of the desk chosen
        submit(page)
        assert searched(page) == [qualified]
        assert "qualified" in page.url and "desk=erp-vendor" in page.url
        assert_accessible(page)
        screenshot(page, "console-search", tmp_path)
        page.goto("/console/search?lang=fr")
        page.fill("#q", cloud.lower())
        submit(page)
        assert searched(page)[0] == cloud


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_page_with_results_and_with_a_refused_value_is_accessible(
    browser: Browser, system: System, language: str
) -> None:
    tag = f"lot{uuid.uuid4().hex[:8]}"
    key = create(system, "cloud-partner", f"Connexion {tag}")
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, PAUL, system.demo_password)
        page.goto(f"/console/search?q={tag}&lang={language}")
        assert searched(page) == [key]
        assert page.locator("#search-results caption").count() == 1
        assert page.locator("#search-results th[scope=col]").count() == 7
        assert_accessible(page)
        refused = page.goto(f"/console/search?q={tag}&from=2026-02-30&desk=nowhere")
        assert refused is not None and refused.status == 422
        assert page.locator("#form-error[role=alert]").is_visible()
        assert page.locator("#created_from[aria-invalid=true]").count() == 1
        assert page.locator("#created_from-error").is_visible()
        described = page.locator("#desk").get_attribute("aria-describedby") or ""
        assert "desk-error" in described
        assert page.locator(RESULTS).count() == 0
        assert_accessible(page)
        page.fill("#created_from", "2026-03-01")  # fixed by keyboard, the search goes on
        page.select_option("#desk", "")
        submit(page)
        assert page.url.count("from=2026-03-01") == 1
        assert page.locator("#created_from[aria-invalid=true]").count() == 0
