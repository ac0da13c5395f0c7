"""The leads' dashboard and each desk's policy in a real browser, on the whole system: Léa,
team lead of erp-vendor, sees figures that follow the requests created in the test (through
intake, one moved on through workflow as staff); Paul, who leads no desk, is refused; each
desk's policy page draws every status; every page passes axe-core and breaks no rule of the
Content-Security-Policy, in French and in English."""

from __future__ import annotations

from typing import Any

import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from e2e_support import eventually
from filing_support import as_lead, file_request
from playwright.sync_api import Browser, Page
from system import System

from desk_policies.loader import load_policies

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"
LEA = "lea@desk.example"
PAUL = "paul@desk.example"
STAFF = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"], "saas-desk": ["supervisor"]}
POLICIES = load_policies()


def figure(page: Page, table: str, key: str, column: int = 0) -> int:
    """The figure of row `key` (its `data-key`), `column` of its cells, in table `table`."""
    cell = page.locator(f"#{table} tr[data-key='{key}'] td").nth(column)
    return int(cell.inner_text())


def figures(page: Page) -> dict[str, int]:
    """The dashboard's figures this test follows."""
    return {
        "open": figure(page, "dash-by-status-table", "open"),
        "in_progress": figure(page, "dash-by-status-table", "in_progress"),
        "open_total": figure(page, "dash-by-status-table", "total"),
        "front_desk": figure(page, "dash-by-actor-table", "front_desk"),
        "service_desk": figure(page, "dash-by-actor-table", "service_desk"),
        "medium_this_month": figure(page, "dash-compliance-table", "medium"),
    }


def medium_requests_known_to_sla(system: System) -> int:
    answer = as_lead(system, "GET", "/desks/erp-vendor/summary", service="sla")
    assert answer.status_code == 200, answer.text
    rows = {r["priority"]: r for r in answer.json()["compliance"]["priorities"]}
    return int(rows["medium"]["requests"])


def test_a_lead_sees_the_figures_follow_the_requests(
    browser: Browser, system: System, tmp_path: Any
) -> None:
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        page.goto("/console?lang=fr")
        with page.expect_navigation():
            page.locator("a[href='/console/dashboard/erp-vendor']").click()
        before = figures(page)
        known = medium_requests_known_to_sla(system)
        waiting = file_request(system, "erp-vendor", "Tableau de bord : requête ouverte")
        started = file_request(system, "erp-vendor", "Tableau de bord : requête en cours")
        moved = as_lead(system, "POST", f"/requests/{started}/start-work")
        assert moved.status_code == 200, moved.text
        eventually(lambda: medium_requests_known_to_sla(system) >= known + 2 or None)
        page.reload()
        after = figures(page)
        assert after == {
            "open": before["open"] + 1,
            "in_progress": before["in_progress"] + 1,
            "open_total": before["open_total"] + 2,
            "front_desk": before["front_desk"] + 1,
            "service_desk": before["service_desk"] + 1,
            "medium_this_month": before["medium_this_month"] + 2,
        }, (waiting, started)
        for chart in ("dash-by-status-chart", "dash-by-actor-chart", "dash-today-chart",
                      "dash-compliance-response-chart", "dash-compliance-resolution-chart",
                      "dash-satisfaction-chart"):  # fmt: skip
            svg = page.locator(f"svg#{chart}[role=img]")
            assert svg.count() == 1, chart
            assert svg.get_attribute("aria-labelledby") == f"{chart}-title"
        assert figure(page, "dash-today-table", "total") >= 0
        assert figure(page, "dash-today-table", "total", 1) >= 0
        assert page.locator("#dash-satisfaction").inner_text().count("Ce desk n'envoie") == 1
        assert_accessible(page)
        screenshot(page, "console-dashboard", tmp_path)
        page.goto("/console/dashboard/erp-vendor?lang=en")
        assert page.locator("h1").inner_text() == "Dashboard: ERP vendor Customer Services"
        assert figures(page) == after
        assert_accessible(page)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_month_is_chosen_within_bounds(browser: Browser, system: System, language: str) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        page.goto(f"/console/dashboard/erp-vendor?lang={language}")
        with page.expect_navigation():
            page.locator("#dash-previous").click()
        assert "month=" in page.url
        assert page.locator("#dash-compliance").count() == 1
        assert page.locator("#dash-next").count() == 1
        assert_accessible(page)
        for bad in ("2026-13", "1999-12", "2999-01", "x" * 300):
            answer = page.goto(f"/console/dashboard/erp-vendor?month={bad}")
            assert answer is not None and answer.status == 422, bad
            assert page.locator("#form-error").is_visible()
            assert page.locator("#month[aria-invalid=true]").count() == 1
            assert page.locator("#dash-compliance").count() == 0
        assert_accessible(page)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_who_does_not_lead_the_desk_is_refused(
    browser: Browser, system: System, language: str
) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, PAUL, system.demo_password)
        for path in ("/console/dashboard/erp-vendor", "/console/admin/desks/erp-vendor"):
            answer = page.goto(f"{path}?lang={language}")
            assert answer is not None and answer.status == 403, path
            assert page.locator("#form-error").is_visible()
            assert "ERP vendor" not in page.locator("main").inner_text()
            assert_accessible(page)
        page.goto(f"/console?lang={language}")
        assert page.locator("a[href='/console/dashboard/erp-vendor']").count() == 0
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        for path in ("/console/dashboard/nope", "/console/admin/desks/nope"):
            answer = page.goto(f"{path}?lang={language}")
            assert answer is not None and answer.status == 404, path
            assert_accessible(page)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_each_desks_policy_draws_every_status(
    browser: Browser, system: System, language: str, tmp_path: Any
) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        for desk, policy in POLICIES.items():
            page.goto(f"/console/admin/desks/{desk}?lang={language}")
            svg = page.locator("svg#dash-policy-diagram[role=img]")
            assert svg.count() == 1, desk
            for status in policy.statuses:
                box = svg.locator(f"g.status[data-status='{status.id}']")
                assert box.count() == 1, (desk, status.id)
                assert status.labels.get(language)[:20] in (box.text_content() or "")
            rows = page.locator("#policy-transitions tbody tr")
            assert rows.count() == len(policy.transitions), desk
            assert page.locator("#policy-statuses tbody tr").count() == len(policy.statuses)
            assert page.locator("#policy-roles tbody tr").count() == len(policy.roles)
            administers = page.locator("#policy-roles tr[data-key='team_lead'] td").nth(1)
            if policy.role("team_lead") is not None:
                assert administers.inner_text() == ("Oui" if language == "fr" else "Yes")
            assert_accessible(page)
            if desk == "erp-vendor" and language == "fr":
                screenshot(page, "console-policy-erp-vendor", tmp_path)
