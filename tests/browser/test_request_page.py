"""The requester's lists and request page in a real browser, on the whole system: requests
created through intake's API as the demonstration customer, staff steps sent to workflow's API
with a staff token; every page passes axe-core and breaks no rule of the
Content-Security-Policy, in French and in English."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import httpx
import pytest
from browser_support import assert_accessible, sign_in, watched_page
from e2e_support import eventually
from identity_support import bearer
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"
CARLA = "carla@globex.example"
STAFF = {"erp-vendor": ["team_lead"], "cloud-partner": ["team_lead"], "saas-desk": ["supervisor"]}


def create(system: System, desk: str, subject: str, **fields: Any) -> str:
    """A request of Anne's at `desk`, created through intake; its key once workflow has it."""
    anne = bearer(ANNE, audience="intake", organisation="acme", signer=system.signer())
    body = {
        "policy_id": desk, "request_type": "support", "priority": "medium", "subject": subject,
        "description": "Depuis la mise à jour\nle rapport échoue.", "organisation_id": "acme",
        "requester": ANNE, "language": "fr", **fields,
    }  # fmt: skip
    answer = httpx.post(
        f"{system.url('intake')}/requests", json=body, timeout=10,
        headers={**anne, "Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    key = str(answer.json()["key"])
    eventually(lambda: staff(system, "GET", f"/requests/{key}").status_code == 200 or None)
    return key


def staff(system: System, method: str, path: str, body: Any = None) -> httpx.Response:
    """`method path` on workflow as Léa, team lead of every desk."""
    lea = bearer("lea@desk.example", audience="workflow", roles=STAFF, signer=system.signer())
    return httpx.request(method, f"{system.url('workflow')}{path}", json=body, headers=lea)


def on_request_page(page: Page, key: str) -> None:
    """The page shown is request `key`'s (else say what it shows instead)."""
    shown = page.locator("#request-key")
    assert shown.count() == 1 and shown.inner_text() == key, page.locator("main").inner_text()


def signed_in(page: Page, system: System, email: str = ANNE) -> None:
    sign_in(page, email, system.demo_password)
    assert page.locator("form[action='/sign-out']").count() == 1


def test_the_lists_search_by_key_and_tell_open_from_closed(
    browser: Browser, system: System
) -> None:
    first = create(system, "cloud-partner", "Rapport mensuel en échec")
    second = create(system, "cloud-partner", "Connexion lente le matin")
    closed = staff(system, "POST", f"/requests/{second}/close", {"resolution_code": "done"})
    assert closed.status_code in (200, 422), closed.text
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto("/requests?lang=fr")
        assert page.locator("h1").inner_text() == "Mes requêtes"
        assert page.locator(f"#requests a[href='/requests/{first}']").is_visible()
        assert page.locator("th[aria-sort='descending']").count() == 1
        assert_accessible(page)
        page.fill("#q", first.lower())
        page.locator("form[role=search] button").click()
        page.wait_for_url(f"**q={first.lower()}*")
        page.wait_for_selector("#requests")
        assert page.locator("#requests tbody tr").count() == 1
        page.locator("th a", has_text="Numéro").click()  # htmx swaps the list, pushes the URL
        page.wait_for_url("**sort=key*")
        assert page.locator("th[aria-sort='descending'] a").inner_text() == "Numéro"
        bad = page.goto("/requests?q=" + "x" * 201)
        assert bad is not None and bad.status == 422
        assert page.locator("#form-error").is_visible()
        assert page.locator("#q[aria-invalid=true]").count() == 1
        assert_accessible(page)
        page.goto("/requests?tab=organisation&state=all&sort=key&order=asc")
        assert page.locator("#tab-organisation[aria-current=page]").count() == 1
        assert " sur " in page.locator("#paging").inner_text()
        assert_accessible(page)
        if closed.status_code == 200:
            page.goto("/requests?state=closed")
            assert page.locator(f"#requests a[href='/requests/{second}']").count() == 1
            assert page.locator(f"#requests a[href='/requests/{first}']").count() == 0


def test_the_request_page_shows_each_element_and_takes_a_comment_by_keyboard(
    browser: Browser, system: System
) -> None:
    key = create(
        system, "erp-vendor", "Erreur SwissDec pour M. Dupont", product_version="15.1",
        company="ACME Suisse", contact="Anne, 021 555 00 00", error_message="ORA-00942",
    )  # fmt: skip
    anne = bearer(ANNE, audience="sla", organisation="acme", signer=system.signer())
    clocks = f"{system.url('sla')}/requests/{key}/clocks"
    eventually(lambda: httpx.get(clocks, headers=anne).status_code == 200 or None)
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto(f"/requests/{key}?lang=en")
        assert "Response" in page.locator("#clocks").inner_text()
        for element in ("#request-key", "#description", "#request-type", "#qualification",
                        "#add-comment", "#activity", "#status", "#notifications", "#people",
                        "#request-created", "#request-updated"):  # fmt: skip
            assert page.locator(element).count() == 1, element
        assert page.locator("#request-key").inner_text() == key
        assert page.locator("#request-error_message").inner_text() == "ORA-00942"
        assert_accessible(page)
        log = {"name": "journal.txt", "mimeType": "text/plain", "buffer": b"ORA-00942 at 10:02"}
        dump = {"name": "dump.bin", "mimeType": "application/octet-stream", "buffer": b"x" * 2**21}
        page.set_input_files("#comment-files", files=[log, dump])  # more than the JSON limit
        page.focus("#comment-body")
        page.keyboard.type("Voici les journaux demandés.")
        page.keyboard.press("Tab")  # the files
        page.keyboard.press("Tab")  # the button
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/requests/{key}?done=comment*")
        on_request_page(page, key)
        assert "Voici les journaux demandés." in page.locator("#activity").inner_text()
        sha = hashlib.sha256(log["buffer"]).hexdigest()
        download = page.locator(f"#attachments a[href='/requests/{key}/attachments/{sha}']")
        assert download.inner_text() == "journal.txt"
        assert (system.state / "blobs" / sha[:2] / sha).read_bytes() == log["buffer"]
        assert page.locator("#attachments li").count() == 2
        assert_accessible(page)
        page.locator("#toggle-notifications").click()
        page.wait_for_url("**done=mute*")
        on_request_page(page, key)
        page.wait_for_selector("#notifications-state")
        assert page.locator("#notifications-state").inner_text().startswith("You no longer")
        assert_accessible(page)


def test_a_reply_sends_a_request_waiting_for_the_customer_back_to_the_team(
    browser: Browser, system: System
) -> None:
    key = create(system, "cloud-partner", "Quelle version installer ?")
    asked = staff(
        system, "POST", f"/requests/{key}/request-information", {"comment": "Quelle version ?"}
    )
    assert asked.status_code == 200, asked.text
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto(f"/requests/{key}?lang=fr")
        assert page.locator("#comment-title").inner_text() == "Répondre"
        assert_accessible(page)
        page.fill("#comment-body", "La version 9.12.")
        page.locator("#send-comment").click()
        page.wait_for_url("**done=comment*")
        after = staff(system, "GET", f"/requests/{key}").json()
        assert after["status"]["id"] == "in_progress"
        assert page.locator("#status-label").inner_text() == "En cours"


def test_a_stale_page_keeps_the_typed_comment(browser: Browser, system: System) -> None:
    key = create(system, "cloud-partner", "Page restée ouverte")
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto(f"/requests/{key}?lang=en")
        assert staff(system, "POST", f"/requests/{key}/start-work").status_code == 200
        page.fill("#comment-body", "Typed before the change")
        with page.expect_navigation():
            page.locator("#send-comment").click()
        assert page.locator("#form-error").is_visible()
        assert page.input_value("#comment-body") == "Typed before the change"
        assert_accessible(page)


def test_a_closed_erp_vendor_request_offers_only_a_new_referencing_request(
    browser: Browser, system: System
) -> None:
    key = create(system, "erp-vendor", "Demande à clore")
    closed = staff(system, "POST", f"/requests/{key}/close", {"resolution_code": "handled"})
    assert closed.status_code == 200, closed.text
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto(f"/requests/{key}?lang=fr")
        link = page.locator("#new-referencing")
        assert link.get_attribute("href") == f"/requests/new?desk=erp-vendor&references={key}"
        assert page.locator("#add-comment").count() == 0
        assert page.locator("#actions form").count() == 0
        assert_accessible(page)


def test_a_customer_of_another_organisation_sees_nothing(browser: Browser, system: System) -> None:
    key = create(system, "saas-desk", "Réservé à ACME", request_type="problem_report")
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        signed_in(page, system, CARLA)
        answer = page.goto(f"/requests/{key}?lang=en")
        assert answer is not None and answer.status == 404
        assert key in page.locator("#missing").inner_text()
        assert "Réservé" not in page.content()
        assert_accessible(page)
        page.goto(f"/requests?tab=organisation&state=all&q={key}")
        assert page.locator("#requests").count() == 0
        assert_accessible(page)


def test_escalate_confirm_then_reopen_a_cloud_partner_request(
    browser: Browser, system: System
) -> None:
    key = create(system, "cloud-partner", "Sauvegarde interrompue")
    assert staff(system, "POST", f"/requests/{key}/start-work").status_code == 200
    resolved = staff(
        system,
        "POST",
        f"/requests/{key}/resolve",
        {"resolution_code": "done", "comment": "Relancée"},
    )
    assert resolved.status_code == 200, resolved.text
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        signed_in(page, system)
        page.goto(f"/requests/{key}?lang=en")
        for name in ("confirm", "dispute", "escalate"):
            assert page.locator(f"#action-{name}").count() == 1, name
        assert page.locator("#action-reopen").count() == 0
        assert_accessible(page)
        page.fill("#text-escalate", "Blocking our month-end")
        page.locator("#action-escalate button").click()
        page.wait_for_url("**done=escalate*")
        on_request_page(page, key)
        assert "Blocking our month-end" in page.locator("#activity").inner_text()
        page.locator("#action-confirm button").click()
        page.wait_for_url("**done=confirm*")
        on_request_page(page, key)
        assert page.locator("#action-reopen").count() == 1
        assert page.locator("#action-confirm").count() == 0
        assert_accessible(page)
        page.locator("#action-reopen button").click()
        page.wait_for_url("**done=reopen*")
        on_request_page(page, key)
        assert staff(system, "GET", f"/requests/{key}").json()["status"]["id"] == "in_progress"
        assert_accessible(page)
