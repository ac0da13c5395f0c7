"""The console's queues in a real browser, on the whole system: the front desk finds a request
created through intake in erp-vendor's "new" queue with its clocks as sla computes them; a
request created while the page is open appears by itself; a team lead assigns a selection in
bulk, one request of which was closed meanwhile and is reported refused while the others are
assigned (as workflow's API then tells). Every page passes axe-core and breaks no rule of the
Content-Security-Policy, in French and in English."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from e2e_support import eventually
from filing_support import as_lead, file_request
from identity_support import bearer
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"
PAUL = "paul@desk.example"
LEA_ROLES = {
    "erp-vendor": ["team_lead"],
    "cloud-partner": ["team_lead"],
    "saas-desk": ["supervisor"],
}
LIVE_WITHIN_MS = 20_000  # the page polls every 10 s; the request reaches sla in a moment


def create(system: System, subject: str) -> str:
    """A critical request of Anne's at erp-vendor (the most urgent first: on the queue's first
    page), made through intake; its key at once (the test waits for sla's queue)."""
    return file_request(
        system, "erp-vendor", subject, wait=False, priority="critical",
        description="La paie est bloquée.",
    )  # fmt: skip


def in_sla_queue(system: System, key: str) -> bool:
    """Does sla's "new" queue of erp-vendor hold `key` yet?"""
    lea = bearer("lea@desk.example", audience="sla", roles=LEA_ROLES, signer=system.signer())
    answer = httpx.get(
        f"{system.url('sla')}/queue", headers=lea, timeout=10,
        params={"policy_id": "erp-vendor", "status": "open", "limit": 200},
    )  # fmt: skip
    return answer.status_code == 200 and key in {row["key"] for row in answer.json()}


def row(page: Page, key: str) -> str:
    return page.locator(f"#queue-table tr[data-key='{key}']").inner_text()


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_front_desk_sees_new_requests_with_their_clocks_and_new_ones_arrive_by_themselves(
    browser: Browser, system: System, language: str, tmp_path: Path
) -> None:
    first = create(system, f"Paie bloquée ({language})")
    eventually(lambda: in_sla_queue(system, first))
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, "frontdesk@desk.example", system.demo_password)
        page.goto(f"/console/queues/erp-vendor?lang={language}")
        # the front desk's own queue first: the requests it is expected to act on
        assert page.locator("a[data-queue='actor-front_desk'][aria-current=page]").count() == 1
        assert page.locator(".console-nav a[aria-current=page]").count() == 1
        with page.expect_navigation():
            page.locator("a[data-queue='new']").click()
        assert page.locator("a[data-queue='new'][aria-current=page]").count() == 1
        shown = row(page, first).replace("\xa0", " ")  # French puts a space before ":"
        clock = "Prise en charge : en cours" if language == "fr" else "Response: running"
        assert clock in shown, shown
        assert page.locator(f"tr[data-key='{first}'] a[href='/console/requests/{first}']").count()
        assert page.locator("#queue-refresh").get_attribute("href") is not None  # without JS
        assert_accessible(page)
        screenshot(page, f"console-queue-{language}", tmp_path)

        later = create(system, f"Imprimante muette ({language})")  # the page stays open
        page.wait_for_selector(f"#queue-table tr[data-key='{later}']", timeout=LIVE_WITHIN_MS)
        assert page.locator(f"#queue-table tr[data-key='{first}']").count() == 1
        assert_accessible(page)


def test_a_bulk_assignment_reports_the_request_closed_meanwhile_and_assigns_the_others(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    keys = [create(system, f"Lot {n}") for n in range(3)]
    for key in keys:
        eventually(lambda key=key: in_sla_queue(system, key))
    kept, closed = keys[:2], keys[2]
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        sign_in(page, "lea@desk.example", system.demo_password)
        page.goto("/console/queues/erp-vendor?queue=new&lang=en")
        for key in keys:
            page.check(f"#pick-{key}")
        # someone closes one of them while the page is open: the queue drops it by itself,
        # the selection keeps it
        done = as_lead(system, "POST", f"/requests/{closed}/close", {"resolution_code": "handled"})
        assert done.status_code == 200, done.text
        page.wait_for_selector(f"#queue-kept #pick-{closed}:checked", timeout=LIVE_WITHIN_MS)
        for key in kept:
            page.check(f"#pick-{key}")  # still checked (idempotent)
        page.select_option("#bulk-form select[name=action]", "assign")
        page.select_option("#bulk-form select[name=assignee_id]", PAUL)
        assert_accessible(page)
        with page.expect_navigation():
            page.locator("#bulk-submit").click()
        for key in kept:
            assert page.locator(f"#bulk-results li[data-key='{key}'].done").count() == 1, key
        refused = page.locator(f"#bulk-results li[data-key='{closed}'].refused")
        assert refused.count() == 1
        assert refused.inner_text().strip() != f"{closed}:"  # with workflow's reason
        assert "2 done, 1 refused" in page.locator("#bulk-summary").inner_text()
        assert_accessible(page)
        screenshot(page, "console-bulk-result", tmp_path)
        for key in kept:
            assert as_lead(system, "GET", f"/requests/{key}").json()["assignee_id"] == PAUL
        after = as_lead(system, "GET", f"/requests/{closed}").json()
        assert after["assignee_id"] is None and after["status"]["id"] == "closed"
        page.goto("/console/queues/erp-vendor?queue=new&lang=fr")
        assert_accessible(page)
