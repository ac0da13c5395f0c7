"""A request, agent side, in a real browser on the whole system: an erp-vendor request Anne
opened through intake, driven from the console by Léa (team lead) through every step of its
path, while Anne's own page, in a second browser context, shows each new status and never the
internal note; a stale page (two agents at once) says what changed; a refused command says why;
a canned reply is inserted into the reply. Every page passes axe-core and breaks no rule of the
Content-Security-Policy, in French and in English."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from browser_support import assert_accessible, screenshot, sign_in, watched_page
from filing_support import file_request, send_form
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"
LEA = "lea@desk.example"
NOTE = "Note interne : le client utilise une version non supportée"


def create(system: System, subject: str, desk: str = "erp-vendor") -> str:
    """A request of Anne's, made through intake; its key once workflow has it."""
    return file_request(system, desk, subject)


def console_page(page: Page, key: str, language: str = "fr") -> None:
    page.goto(f"/console/requests/{key}?lang={language}")
    assert page.locator("#request-key").inner_text() == key, page.locator("main").inner_text()


def done(page: Page, name: str, key: str) -> None:
    """The command `name` was taken: back on the request's page with the notice."""
    assert f"/console/requests/{key}?done={name}" in page.url, page.locator("main").inner_text()
    assert page.locator("p.notice[role=status]").is_visible()


def anne_sees(page: Page, key: str, status: str) -> str:
    """Anne's page of the request shows `status`, and never the internal note; its text."""
    page.goto(f"/requests/{key}")
    assert page.locator("#status-label").inner_text() == status
    text = page.locator("main").inner_text()
    assert NOTE not in text and NOTE not in page.content()
    return text


def test_lea_drives_an_erp_vendor_request_while_anne_follows_it(
    browser: Browser, system: System, tmp_path: Any
) -> None:
    key = create(system, "Rapport mensuel en échec")
    portal = system.url("portal")
    with watched_page(browser, portal, "fr") as agent, watched_page(browser, portal, "fr") as anne:
        lea, customer = agent.page, anne.page
        sign_in(lea, LEA, system.demo_password)
        sign_in(customer, ANNE, system.demo_password)
        console_page(lea, key)
        assert lea.locator("#status").inner_text() == "Ouvert"
        assert lea.locator("#priority").inner_text() == "Moyenne"
        assert lea.locator("form#cmd-confirm_resolution").count() == 0  # the customer's
        assert_accessible(lea)
        anne_sees(customer, key, "Ouvert")
        log = {"name": "journal.txt", "mimeType": "text/plain", "buffer": b"ORA-00942 at 10:02"}
        customer.fill("#comment-body", "Voici le journal.")
        customer.set_input_files("#comment-files", files=[log])
        with customer.expect_navigation():
            customer.locator("#send-comment").click()
        console_page(lea, key)
        download = lea.locator("#attachments a", has_text="journal.txt")
        href = download.get_attribute("href")
        assert href is not None and href.startswith(f"/requests/{key}/attachments/")
        got = lea.request.get(href)  # the portal's download route, for staff too
        assert got.status == 200 and got.body() == log["buffer"]

        send_form(lea, "qualify")
        done(lea, "qualify", key)
        assert lea.locator("#status").inner_text() == "Qualifié"
        anne_sees(customer, key, "Qualifié")

        send_form(lea, "start")
        done(lea, "start", key)
        anne_sees(customer, key, "En cours")

        send_form(lea, "note", body=NOTE)
        done(lea, "note", key)
        internal = lea.locator("ol#history > li.internal")
        assert NOTE in internal.first.inner_text()
        send_form(lea, "comment", body="Nous analysons le rapport.")
        done(lea, "comment", key)
        assert "Nous analysons le rapport." in anne_sees(customer, key, "En cours")

        send_form(lea, "change_priority", priority="low", reason="")
        assert lea.locator("#form-error #refusal").is_visible()
        assert lea.locator("#change_priority-reason[aria-invalid=true]").count() == 1
        assert_accessible(lea)
        send_form(lea, "change_priority", priority="low", reason="Un contournement existe")
        done(lea, "change_priority", key)
        assert lea.locator("#priority").inner_text() == "Basse"
        told = anne_sees(customer, key, "En cours")
        assert "Un contournement existe" in told
        assert customer.locator("#request-priority").inner_text() == "Basse"

        send_form(lea, "escalate", target="triage", comment="Analyse par les experts")
        done(lea, "escalate", key)
        assert lea.locator("#status").inner_text() == "En attente triage"
        assert "Analyse par les experts" not in anne_sees(customer, key, "En attente triage")
        send_form(lea, "return_from_escalation", comment="Configuration à corriger")
        done(lea, "return_from_escalation", key)
        anne_sees(customer, key, "En cours")

        send_form(lea, "resolve", resolution_code="handled", comment="Paramètre corrigé")
        done(lea, "resolve", key)
        assert lea.locator("#status").inner_text() == "Traité, confirmation attendue"
        assert "Paramètre corrigé" in anne_sees(customer, key, "Traité, confirmation attendue")

        # closing needs the requester's confirmation first: the policy's reason is shown
        send_form(lea, "close", resolution_code="handled")
        assert lea.locator("#form-error").is_visible()
        assert "confirm" in lea.locator("#refusal").inner_text()
        assert lea.locator("#status").inner_text() == "Traité, confirmation attendue"
        assert_accessible(lea)
        screenshot(lea, "console-request-refused", tmp_path)

        history = lea.locator("ol#history > li")
        assert history.count() >= 9
        assert LEA in history.first.inner_text()  # who did it, newest first
        console_page(lea, key, "en")
        assert lea.locator("#status").inner_text() == "Resolved, awaiting confirmation"
        assert lea.locator("#clocks").count() == 1
        assert_accessible(lea)
        screenshot(lea, "console-request", tmp_path)


def test_a_stale_page_says_what_changed_and_keeps_the_text(
    browser: Browser, system: System
) -> None:
    key = create(system, "Deux agents à la fois")
    portal = system.url("portal")
    with (
        watched_page(browser, portal, "fr") as first,
        watched_page(browser, portal, "fr") as second,
    ):
        one, other = first.page, second.page
        sign_in(one, LEA, system.demo_password)
        sign_in(other, "frontdesk@desk.example", system.demo_password)
        console_page(one, key)
        console_page(other, key)
        send_form(one, "qualify")
        done(one, "qualify", key)
        send_form(other, "note", body="Écrit sur une page ancienne")
        assert other.locator("#form-error").is_visible()
        changes = other.locator("#changes li")
        assert changes.count() == 1
        assert "Demande qualifiée" in changes.first.inner_text()
        assert other.input_value("#note-body") == "Écrit sur une page ancienne"
        assert other.locator("#status").inner_text() == "Qualifié"
        assert_accessible(other)
        send_form(other, "note", body="Écrit sur une page ancienne")  # sent again: taken
        done(other, "note", key)
        console_page(other, key, "en")
        assert_accessible(other)
        for missing in ("SPT-999999", "pas-une-clé"):
            answer = other.goto(f"/console/requests/{missing}")
            assert answer is not None and answer.status == 404
        assert other.locator("#missing").is_visible()
        assert_accessible(other)


def add_reply(system: System, desk: str, language: str, title: str, body: str) -> str:
    """A canned reply of `desk`, written straight into the portal's table."""

    async def insert() -> str:
        conn = await asyncpg.connect(system.database_url)
        try:
            reply_id = uuid.uuid4()
            await conn.execute(
                """INSERT INTO portal.canned_replies
                   (reply_id, policy_id, language, title, body, changed_by, changed_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                reply_id, desk, language, title, body, LEA, datetime.now(UTC),
            )  # fmt: skip
            return str(reply_id)
        finally:
            await conn.close()

    with ThreadPoolExecutor(1) as thread:  # Playwright's own event loop runs in this one
        return thread.submit(asyncio.run, insert()).result()


def test_a_canned_reply_is_inserted_into_the_reply(browser: Browser, system: System) -> None:
    key = create(system, "Réponse type")
    french = add_reply(
        system, "erp-vendor", "fr", "Accusé", "Bonjour {requester}, {key} : {subject}."
    )
    add_reply(system, "erp-vendor", "en", "Received", "Hello {requester}")
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        console_page(page, key)
        options = page.locator("select#canned option")
        shown = options.all_inner_texts()  # other tests may add the desk's replies too
        assert "Accusé" in shown and "Received" not in shown  # the request's language only
        page.locator("select#canned").select_option(label="Accusé")
        page.fill("#reply-body", "Déjà écrit.")
        page.locator("#insert-canned").click()  # htmx: only the textarea, what was typed kept
        expected = f"Bonjour Anne Martin, {key} : Réponse type."
        page.wait_for_function(
            "text => document.querySelector('#reply-body').value.includes(text)", arg=expected
        )
        assert page.input_value("#reply-body") == f"Déjà écrit.\n\n{expected}"
        assert page.url.endswith(f"/console/requests/{key}?lang=fr")
        page.goto(f"/console/requests/{key}?canned={french}#reply")  # the same without htmx
        assert page.input_value("#reply-body") == expected
        assert_accessible(page)
        send_form(page, "comment", body=page.input_value("#reply-body"))
        done(page, "comment", key)
        assert expected in page.locator("ol#history").inner_text()


def test_bad_input_is_said_beside_its_field_and_kept(browser: Browser, system: System) -> None:
    key = create(system, "Montée de version", desk="cloud-partner")
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        sign_in(page, LEA, system.demo_password)
        console_page(page, key, "en")
        when = "#schedule_operation-scheduled_for"
        page.evaluate(f"document.querySelector('{when}').type = 'text'")  # what no picker sends
        send_form(page, "schedule_operation", scheduled_for="31.02.2030 25:00", responsible="Léa")
        assert page.locator(f"{when}[aria-invalid=true]").count() == 1
        assert page.locator(f"{when}-error").is_visible()
        assert page.locator("#refusal").is_visible()
        assert page.get_attribute(when, "value") == "31.02.2030 25:00"  # a picker shows none
        assert page.input_value("#schedule_operation-responsible") == "Léa"
        assert_accessible(page)
        ask = "#request_information-comment"
        page.evaluate(f"document.querySelector('{ask}').removeAttribute('maxlength')")
        send_form(page, "request_information", comment="x" * 5001)
        assert page.locator(f"{ask}-error").is_visible()
        send_form(page, "schedule_operation", scheduled_for="2030-03-10T20:00", responsible="Léa")
        done(page, "schedule_operation", key)
        assert page.locator("#status").inner_text() == "Scheduled operation"
        assert "2030" in page.locator("ol#history > li").first.inner_text()
        forged = page.request.post(
            f"/console/requests/{key}/command/start", form={"csrf": "forged", "version": "1"}
        )
        assert forged.status == 403
        assert page.locator("#status").inner_text() == "Scheduled operation"
