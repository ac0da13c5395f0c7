"""The agents' console's door in a real browser: staff reach it from the portal's navigation
and see the desks they work at; a customer is refused; the page passes axe-core and breaks no
rule of the Content-Security-Policy, in French and in English."""

from __future__ import annotations

import pytest
from browser_support import assert_accessible, sign_in, watched_page
from playwright.sync_api import Browser
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_staff_reach_the_console_of_their_desks(
    browser: Browser, system: System, language: str
) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        sign_in(page, "paul@desk.example", system.demo_password)
        page.goto(f"/?lang={language}")
        with page.expect_navigation():
            page.locator("#nav-console").click()
        assert page.url.endswith("/console")
        titles = page.locator("main h2").all_inner_texts()
        assert len(titles) == 3, titles  # Paul works at the three desks
        assert page.locator(".console-nav a[aria-current=page]").count() == 1
        assert_accessible(page)


def test_a_customer_is_refused_and_a_visitor_signs_in_first(
    browser: Browser, system: System
) -> None:
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        page.goto("/console?lang=en")
        assert "/sign-in?next=/console" in page.url
        sign_in(page, "anne@acme.example", system.demo_password)
        assert page.locator("#nav-console").count() == 0
        answer = page.goto("/console")
        assert answer is not None and answer.status == 403
        assert_accessible(page)
