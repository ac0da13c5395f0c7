"""A requester's whole story at each seed desk, in a real browser on the whole system: sign in,
open a request with an attachment, find it in the organisation's requests, receive the desk's
mail about it (the acknowledgement where the desk sends one for the portal, else its question
to the customer) and follow its link (signing in first), reply, confirm the resolution, and,
where the desk asks for it, answer the satisfaction survey from its mail; then what the closed
request offers. The support side's steps go to workflow's API as the desk's team lead. Every
page passes axe-core and breaks no rule of the Content-Security-Policy.

Screenshots of the main pages are taken on the way (`PORTAL_SCREENSHOTS` keeps them: the
README's come from a run with `PORTAL_SCREENSHOTS=docs/screenshots`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import assert_accessible, screenshot, sign_in, tiny_png, watched_page
from e2e_support import eventually, mails
from identity_support import bearer
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"  # a customer of ACME, at every desk


@dataclass(frozen=True)
class Story:
    """What differs between the desks' stories (their policies, not the portal's code)."""

    desk: str
    request_type: str
    lead: dict[str, list[str]]  # the support role that drives the desk's side
    ask: tuple[tuple[str, dict[str, Any]], ...]  # the support steps to waiting for the customer
    resolution: dict[str, Any]
    after_confirmation: tuple[tuple[str, dict[str, Any]], ...]  # the support side closes
    language: str
    acknowledged: bool  # the desk mails a receipt of a request made in the portal
    survey: bool  # the desk mails a satisfaction survey on closing
    closed_offers: str  # what the closed request's page offers: an action form or a link


STORIES = [
    Story(
        "erp-vendor", "support", {"erp-vendor": ["team_lead"]},
        (("request-information", {"comment": "Quelle version du module salaires ?"}),),
        {"resolution_code": "handled", "comment": "Certificat renouvelé."},
        (("close", {}),), "fr", False, False, "#new-referencing",
    ),
    Story(
        "cloud-partner", "support", {"cloud-partner": ["team_lead"]},
        (("request-information", {"comment": "Which subscription is it?"}),),
        {"resolution_code": "done", "comment": "The quota was raised."},
        (), "en", False, False, "#action-reopen",
    ),
    Story(
        "saas-desk", "problem_report", {"saas-desk": ["supervisor"]},
        (("start-work", {}),  # an agent's answer is what waits for the customer there
         ("resolve", {"resolution_code": "answered", "comment": "Try the new export, please."})),
        {"resolution_code": "fixed", "comment": "The export is fixed."},
        (), "fr", True, True, "#action-reopen",
    ),
]  # fmt: skip


def lead(system: System, story: Story, method: str, path: str, body: Any = None) -> Any:
    """`method path` on workflow as Léa, the desk's lead; the answer's JSON (it must succeed)."""
    headers = bearer("lea@desk.example", audience="workflow", roles=story.lead,
                     signer=system.signer())  # fmt: skip
    answer = httpx.request(
        method, f"{system.url('workflow')}{path}", json=body, headers=headers, timeout=10
    )
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


def mailed_link(system: System, key: str, pattern: str) -> str:
    """The first link matching `pattern` in a mail to Anne about `key` (waiting for it)."""
    link = re.compile(rf"{re.escape(system.url('portal'))}{pattern}")

    def found() -> str | None:
        for mail in mails(system.mail_folder):
            if mail["To"] == ANNE and key in str(mail["Subject"]):
                match = link.search(mail.get_body(("plain",)).get_content())
                if match:
                    return match.group()
        return None

    return str(eventually(found, timeout=60))


def status_of(system: System, story: Story, key: str) -> str:
    return str(lead(system, story, "GET", f"/requests/{key}")["status"]["id"])


def open_request(page: Page, story: Story, image: Path, shots: Path) -> str:
    """Fill and send the new-request form with an attachment; the new request's key."""
    page.goto(f"/requests/new?desk={story.desk}&lang={story.language}")
    assert_accessible(page)
    page.select_option("#request_type", story.request_type)
    page.check("#priority-medium")
    page.fill("#subject", f"Story {story.desk}: the export stops at step 3")
    page.fill("#description", "Since this morning the export stops at step 3.")
    page.set_input_files("#attachments", str(image))
    if story.desk == "erp-vendor":
        screenshot(page, "new-request", shots)
    page.locator("#submit").click()
    page.wait_for_url(re.compile(r"/requests/[A-Z]+-\d+"))
    key = page.url.split("/requests/")[1].split("?")[0]
    assert page.locator("#request-key").inner_text() == key
    assert page.locator("#attachments a", has_text=image.name).count() == 1
    assert_accessible(page)
    return key


@pytest.mark.parametrize("story", STORIES, ids=[s.desk for s in STORIES])
def test_a_requesters_story(browser: Browser, system: System, story: Story, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    image = tmp_path / "capture.png"
    image.write_bytes(tiny_png())
    with watched_page(browser, system.url("portal"), story.language) as watched:
        page = watched.page
        sign_in(page, ANNE, system.demo_password)
        page.goto(f"/?desk={story.desk}&lang={story.language}")
        assert_accessible(page)
        if story.desk == "erp-vendor":
            screenshot(page, "home", shots)
        key = open_request(page, story, image, shots)

        page.goto("/requests?tab=organisation&state=open")
        assert page.locator(f"#requests a[href='/requests/{key}']").count() == 1
        assert_accessible(page)
        if story.desk == "erp-vendor":
            screenshot(page, "organisation-requests", shots)

    eventually(lambda: status_of(system, story, key))
    for action, body in story.ask:
        lead(system, story, "POST", f"/requests/{key}/{action}", body)
    first = mailed_link(system, key, rf"/requests/{key}\b")

    with watched_page(browser, system.url("portal"), story.language) as watched:
        page = watched.page  # a new browser: the mail's link asks to sign in first
        page.goto(first)
        page.wait_for_url(re.compile(r"/sign-in\?next=/requests/"))
        page.fill("#email", ANNE)
        page.fill("#password", system.demo_password)
        page.locator("form[action^='/sign-in'] button[type=submit]").click()
        page.wait_for_url(f"**/requests/{key}*")
        assert page.locator("#comment-title").count() == 1
        page.fill("#comment-body", "Here is the version: 15.4.2.")
        page.locator("#send-comment").click()
        page.wait_for_url("**done=comment*")
        assert_accessible(page)
        if story.desk == "erp-vendor":
            screenshot(page, "request", shots)
        waiting = {"saas-desk": "assigned"}.get(story.desk, "in_progress")
        assert status_of(system, story, key) == waiting

        lead(system, story, "POST", f"/requests/{key}/resolve", story.resolution)
        page.goto(f"/requests/{key}?lang={story.language}")
        with page.expect_navigation():
            page.locator("#action-confirm button").click()
        for action, body in story.after_confirmation:
            lead(system, story, "POST", f"/requests/{key}/{action}", body)
        assert status_of(system, story, key) == "closed"
        page.goto(f"/requests/{key}?lang={story.language}")
        assert page.locator(story.closed_offers).count() == 1
        assert_accessible(page)

    if story.survey:
        survey = mailed_link(system, key, r"/survey/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")
        with watched_page(browser, system.url("portal"), story.language) as watched:
            page = watched.page  # from the mail, without signing in
            page.goto(survey)
            assert_accessible(page)
            screenshot(page, "survey", shots)
            page.check("#rating-5")
            page.fill("#comment", "Rapide et clair.")
            with page.expect_navigation():
                page.locator("main form button[type=submit]").click()
            assert page.locator("main").inner_text().count(key) >= 1
            assert_accessible(page)
