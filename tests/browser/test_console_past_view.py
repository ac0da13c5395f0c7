"""A request as it was, and its audit, in a real browser on the browser tests' whole system:
Léa qualifies an erp-vendor request Anne opened, then asks, with the keyboard, to see it as it
was before (Open, under the past view's banner, with no command), before it existed (the reason
beside the field), then reads its audit and downloads it as CSV, and the desk's audit of the
day. Every page passes axe-core and breaks no rule of the Content-Security-Policy."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from browser_support import assert_accessible, sign_in, watched_page
from filing_support import file_request, send_form
from playwright.sync_api import Browser
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
LEA = "lea@desk.example"


def test_lea_sees_a_request_as_it_was_and_who_changed_what(
    browser: Browser, system: System, tmp_path: Any
) -> None:
    key = file_request(system, "erp-vendor", "Vue passée d'une demande")
    time.sleep(1.1)
    between = datetime.now(UTC)  # after its creation, before it is qualified
    time.sleep(1.1)
    with watched_page(browser, system.url("portal"), "en") as agent:
        lea = agent.page
        sign_in(lea, LEA, system.demo_password)
        lea.goto(f"/console/requests/{key}?lang=en")
        send_form(lea, "qualify")
        assert lea.locator("#status").inner_text() == "Qualified"
        hint = lea.locator("#as-of-hint").inner_text()
        zone = ZoneInfo(re.search(r"\(([^)]+)\)", hint).group(1))  # type: ignore[union-attr]

        lea.locator("label[for=as-of]").click()  # the label names the field: it takes focus
        assert lea.evaluate("document.activeElement.id") == "as-of"
        lea.fill("#as-of", between.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S"))
        lea.locator("#as-of-submit").focus()
        with lea.expect_navigation():
            lea.keyboard.press("Enter")  # sent with the keyboard
        assert lea.locator("#past-view").is_visible()
        assert lea.locator("#status").inner_text() == "Open"
        assert lea.locator("form.command").count() == 0
        assert_accessible(lea)

        lea.fill("#as-of", (between - timedelta(days=400)).strftime("%Y-%m-%dT%H:%M"))
        with lea.expect_navigation():
            lea.locator("#as-of-submit").click()
        assert lea.locator("#as-of[aria-invalid=true]").count() == 1
        assert "did not exist yet" in lea.locator("#as-of-error").inner_text()
        assert lea.locator("#status").inner_text() == "Qualified"

        with lea.expect_navigation():
            lea.locator("#audit-link").click()
        statuses = lea.locator("#audit tr[data-field=status]")
        assert statuses.count() == 2 and "Qualified" in statuses.nth(1).inner_text()
        assert_accessible(lea)
        href = lea.locator("#audit-csv").get_attribute("href")
        assert href == f"/console/requests/{key}/audit.csv"
        download = lea.request.get(href)
        assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
        assert download.text().startswith("key,version,occurred_at,event,actor_id")

        lea.goto("/console/audit/erp-vendor?lang=en")
        today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
        lea.fill("#period-from", today.strftime("%Y-%m-%dT%H:%M"))
        lea.fill("#period-to", (today + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"))
        with lea.expect_navigation():
            lea.locator("#period-submit").click()
        assert lea.locator(f"#audit a[href='/console/requests/{key}']").count() >= 2
        assert_accessible(lea)
