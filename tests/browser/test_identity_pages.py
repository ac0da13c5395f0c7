"""The who-is-who pages in a real browser: each one, in French and English, passes axe-core
with no serious or critical violation and breaks no rule of the Content-Security-Policy;
signing in works from the keyboard alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from playwright.sync_api import Browser
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"  # a customer of ACME in the demonstration directory
BRUNO = "bruno@acme.example"  # another: his profile changes here (the system is shared)


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("path", ["/sign-in", "/sign-in/link", "/register", "/reset"])
def test_each_page_before_sign_in_is_accessible(
    browser: Browser, system: System, language: str, path: str
) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        watched.page.goto(f"{path}?lang={language}")
        assert watched.page.locator("html").get_attribute("lang") == language
        assert_accessible(watched.page)


def test_signing_in_by_keyboard_alone_then_the_profile(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    with watched_page(browser, system.url("portal")) as watched:
        page = watched.page
        page.goto("/sign-in?lang=fr")
        screenshot(page, "sign-in", tmp_path)
        page.keyboard.press("Tab")  # the skip link first
        page.keyboard.press("Tab")
        page.focus("#email")
        page.keyboard.type(BRUNO)
        page.keyboard.press("Tab")
        page.keyboard.type(system.demo_password)
        page.keyboard.press("Enter")
        page.wait_for_url("**/")
        assert "Bruno Keller" in page.inner_text("main")
        page.goto("/profile")
        assert_accessible(page)
        page.fill("#phone", "+41 21 555 00 00")
        page.select_option("#language", "en")
        with page.expect_navigation():
            page.locator("main form button[type=submit]").click()
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.input_value("#phone") == "+41 21 555 00 00"


def test_a_wrong_password_is_said_beside_the_form(browser: Browser, system: System) -> None:
    with watched_page(browser, system.url("portal"), "en") as watched:
        sign_in(watched.page, ANNE, "not-the-password")
        assert watched.page.locator("#form-error").is_visible()
        assert watched.page.input_value("#email") == ANNE
        assert_accessible(watched.page)
