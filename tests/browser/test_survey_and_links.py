"""Mail links in a real browser, French and English, each page passing axe-core and the
Content-Security-Policy: a page that needs sign-in sends to the sign-in page, which lands back
on it once signed in; the satisfaction survey's page, opened from its mailed token without
signing in, is answered from the keyboard alone and thanks, then says it was answered; a
forged and an expired link each get their page; closing a request mails a survey link that
opens the portal's survey page."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from browser_support import assert_accessible, watched_page
from e2e_support import eventually, mails
from identity_support import bearer
from playwright.sync_api import Browser, Page
from system import System

from desk_platform.survey_tokens import SurveyClaim, make_token

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"  # a customer of ACME in the demonstration directory
THANKS = {"fr": "Merci !", "en": "Thank you!"}
ALREADY = {"fr": "déjà été donné", "en": "already rated"}


def a_request(system: System) -> dict[str, Any]:
    """A request of Anne's, made through intake and opened by workflow."""
    anne = bearer(ANNE, audience="intake", signer=system.signer(), organisation="acme")
    made = httpx.post(
        f"{system.url('intake')}/requests",
        json={"policy_id": "saas-desk", "request_type": "problem_report", "priority": "high",
              "subject": "Export fails", "description": "Error 500", "organisation_id": "acme",
              "requester": ANNE},
        headers=anne, timeout=10,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    return dict(made.json())


def survey_token(system: System, request: dict[str, Any], language: str, days: int = 30) -> str:
    """The token the notifier would mail Anne for `request` (the system's survey secret)."""
    claim = SurveyClaim(
        ticket_id=request["ticket_id"],
        key=request["key"],
        policy_id="saas-desk",
        respondent=ANNE,
        language=language,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    return make_token(os.environ.get("SURVEY_SECRET") or system.survey_secret, claim)


def tab_to(page: Page, selector: str, presses: int = 30) -> None:
    """Press Tab until `selector` has the focus."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement.matches({selector!r})"):
            return
    raise AssertionError(f"Tab never reached {selector}")


@pytest.mark.parametrize("language", ["fr", "en"])
def test_signing_in_from_a_link_lands_on_the_page_asked_for(
    browser: Browser, system: System, language: str
) -> None:
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        page.goto(f"/profile?lang={language}")
        assert "/sign-in?next=" in page.url
        asked = page.locator("input[name=next]").get_attribute("value")
        assert asked == f"/profile?lang={language}"
        assert_accessible(page)
        tab_to(page, "#email")
        page.keyboard.type(ANNE)
        page.keyboard.press("Tab")
        page.keyboard.type(system.demo_password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "/profile?lang=" in url)
        assert page.locator("html").get_attribute("lang") == language
        assert page.input_value("#time_zone") == "Europe/Zurich"  # the shipped directory's
        assert_accessible(page)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_survey_is_answered_by_keyboard_without_signing_in(
    browser: Browser, system: System, language: str
) -> None:
    request = a_request(system)
    link = f"/survey/{survey_token(system, request, language)}"
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        shown = page.goto(link)
        assert shown is not None and shown.status == 200
        assert page.locator("html").get_attribute("lang") == language
        assert page.locator("fieldset legend").inner_text().count(request["key"]) == 1
        assert page.locator("input[type=radio][name=rating]").count() == 5
        assert_accessible(page)
        tab_to(page, "input[name=rating]")
        for _ in range(3):  # from the first face to the fourth
            page.keyboard.press("ArrowRight")
        assert page.locator("#rating-4").is_checked()
        page.keyboard.press("Tab")
        page.keyboard.type("Rapide et clair" if language == "fr" else "Quick and clear")
        page.keyboard.press("Tab")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert THANKS[language] in page.inner_text("main")
        assert_accessible(page)
        again = page.goto(link)
        assert again is not None and again.status == 200
        assert ALREADY[language] in page.inner_text("main")
        assert_accessible(page)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_forged_and_an_expired_survey_link_get_their_pages(
    browser: Browser, system: System, language: str
) -> None:
    request = a_request(system)
    expired = survey_token(system, request, language, days=-1)
    with watched_page(browser, system.url("portal"), language) as watched:
        page = watched.page
        for token, status in ((expired, 410), (expired[:-4] + "AAAA", 403)):
            shown = page.goto(f"/survey/{token}?lang={language}")
            assert shown is not None and shown.status == status
            assert page.locator("html").get_attribute("lang") == language
            assert page.locator("input[type=radio]").count() == 0
            assert_accessible(page)


def test_closing_a_request_mails_a_link_to_the_portals_survey_page(
    browser: Browser, system: System
) -> None:
    request = a_request(system)
    agent = bearer("paul@desk.example", audience="workflow", signer=system.signer(),
                   roles={"saas-desk": ["agent"]})  # fmt: skip
    workflow = httpx.Client(base_url=system.url("workflow"), headers=agent, timeout=10)
    eventually(lambda: workflow.get(f"/requests/{request['key']}").status_code == 200)
    closed = workflow.post(f"/requests/{request['key']}/close", json={"resolution_code": "fixed"})
    assert closed.status_code == 200, closed.text
    survey = re.compile(
        rf"{re.escape(system.url('portal'))}/survey/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+"
    )

    def link() -> str | None:
        for mail in mails(system.mail_folder):
            if request["key"] in mail["Subject"] and mail["To"] == ANNE:
                found = survey.search(mail.get_body(("plain",)).get_content())
                if found:
                    return found.group()
        return None

    mailed = eventually(link)
    with watched_page(browser, system.url("portal"), "fr") as watched:
        shown = watched.page.goto(mailed)
        assert shown is not None and shown.status == 200
        assert watched.page.locator("input[type=radio][name=rating]").count() == 5
        assert request["key"] in watched.page.inner_text("h1")
        assert_accessible(watched.page)
