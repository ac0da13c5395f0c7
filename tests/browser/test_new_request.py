"""The home page and a new request in a real browser: a customer reads their desk's guide,
opens a request with an attachment (a refusal shown beside its field keeps what was typed),
sends it from the keyboard, a second sending of the same form makes no second request, and the
attachment downloads for them; sales administration sees the licence type a customer does not.
Every page passes axe-core and breaks no rule of the Content-Security-Policy."""

from __future__ import annotations

import hashlib
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
from browser_support import assert_accessible, screenshot, sign_in, tiny_png, watched_page
from playwright.sync_api import Browser, Page
from system import System

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ANNE = "anne@acme.example"  # a customer of ACME, at every desk
CARLA = "carla@globex.example"  # a customer of another organisation
SALES = "sales@desk.example"  # the ERP vendor's sales administration


def fill_request(page: Page, subject: str, image: Path) -> None:
    page.select_option("#request_type", "support")
    page.check("#priority-high")
    page.fill("#subject", subject)
    page.fill("#description", "Depuis ce matin, la transmission échoue à l'étape 3.")
    page.fill("#product_version", "15.4.2")
    page.fill("#error_message", "SWD-0042: certificat refusé")
    page.fill("#participants", "bruno@acme.example")
    page.set_input_files("#attachments", str(image))


def test_a_customer_reads_the_guide_and_opens_a_request_with_an_attachment(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    image = tmp_path / "écran.png"
    image.write_bytes(tiny_png())
    with watched_page(browser, system.url("portal"), "fr") as watched:
        page = watched.page
        sign_in(page, ANNE, system.demo_password)
        page.goto("/?desk=erp-vendor")
        main = page.inner_text("main")
        assert "Quand faut-il ouvrir une demande" in main
        assert "Bienvenue sur le portail Customer Services" in main  # an announcement
        assert "Processus vital bloqué" in main  # the priorities' meaning
        assert "LIC" not in main  # licence requests are made by sales administration only
        assert page.locator("a[href='/?desk=saas-desk']").count() == 1  # her other desks
        assert_accessible(page)
        screenshot(page, "home", tmp_path)

        page.click("#new-request")
        page.wait_for_url("**/requests/new?desk=erp-vendor")
        assert page.locator("#request_type option[value=licence]").count() == 0
        assert page.locator("#subject-hint").is_visible()
        assert page.locator("#priority-critical-meaning").is_visible()
        assert_accessible(page)

        fill_request(page, "  x", image)  # three characters for the browser, one for us
        with page.expect_navigation():
            page.click("#submit")
        assert page.locator("#subject").get_attribute("aria-invalid") == "true"
        assert "subject-error" in (page.locator("#subject").get_attribute("aria-describedby") or "")
        assert page.locator("#subject-error").is_visible()
        assert page.input_value("#description").startswith("Depuis ce matin")
        assert page.input_value("#product_version") == "15.4.2"
        assert page.is_checked("#priority-high")
        assert page.locator("#files-lost").is_visible()  # files must be chosen again
        assert_accessible(page)
        screenshot(page, "new-request-refused", tmp_path)

        page.fill("#subject", "Erreur lors de la transmission SwissDec pour M. Dupont")
        page.set_input_files("#attachments", str(image))
        fields = {
            name: page.locator(f"#new-request-form input[name={name}]").input_value()
            for name in ("csrf", "desk", "idempotency")
        }
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.focus("#submit")
            page.keyboard.press("Enter")  # from the keyboard alone
        first = posted.value
        assert first.status == 303, first.status
        location = first.headers["location"]
        match = re.fullmatch(r"/requests/(SPT-[0-9]+)\?done=created", location)
        assert match, location
        key = match.group(1)

        again = page.request.post(  # the same form sent once more (a double click)
            "/requests/new",
            multipart={
                **fields,
                "request_type": "support",
                "priority": "high",
                "subject": "Erreur lors de la transmission SwissDec pour M. Dupont",
                "description": "Depuis ce matin, la transmission échoue à l'étape 3.",
                "product_version": "15.4.2",
                "company": "",
                "contact": "",
                "error_message": "SWD-0042: certificat refusé",
                "participants": "bruno@acme.example",
                "attachments": {
                    "name": "écran.png",
                    "mimeType": "image/png",
                    "buffer": image.read_bytes(),
                },
            },
            max_redirects=0,
        )
        assert again.status == 303 and again.headers["location"] == location

        sha256 = hashlib.sha256(image.read_bytes()).hexdigest()
        download = f"/requests/{key}/attachments/{sha256}"
        deadline = time.monotonic() + 30
        while (answer := page.request.get(download)).status != 200:  # workflow follows
            assert time.monotonic() < deadline, f"{download}: {answer.status}"
            time.sleep(0.5)
        assert answer.body() == image.read_bytes()
        assert answer.headers["content-type"] == "application/octet-stream"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "filename*=UTF-8''%C3%A9cran.png" in answer.headers["content-disposition"]
        assert "no-store" in answer.headers["cache-control"]
        assert page.request.get(f"/requests/{key}/attachments/{'0' * 64}").status == 404
    with watched_page(browser, system.url("portal"), "en") as other:  # another organisation
        sign_in(other.page, CARLA, system.demo_password)
        assert other.page.request.get(download).status == 404


def test_a_file_over_the_limit_is_refused_keeping_what_was_typed(
    browser: Browser, system: System, tmp_path: Path
) -> None:
    large = tmp_path / "dump.bin"
    large.write_bytes(b"\0" * (10 * 1024 * 1024 + 1))  # one byte over the 10 MiB limit
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        sign_in(page, ANNE, system.demo_password)
        page.goto("/requests/new?desk=saas-desk&lang=en")
        assert "10 MiB" in page.inner_text("#attachments-hint")  # said before the upload
        page.check("#priority-low")
        page.fill("#subject", "The export is too slow")
        page.fill("#description", "It takes an hour.")
        page.set_input_files("#attachments", str(large))
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.click("#submit")
        assert posted.value.status == 413
        page.wait_for_load_state()
        assert page.locator("#attachments").get_attribute("aria-invalid") == "true"
        assert page.locator("#attachments-error").is_visible()
        assert page.input_value("#subject") == "The export is too slow"
        assert page.input_value("#description") == "It takes an hour."
        assert_accessible(page)


def test_sales_administration_may_open_a_licence_request_a_customer_may_not(
    browser: Browser, system: System
) -> None:
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        sign_in(page, SALES, system.demo_password)
        page.goto("/requests/new?desk=erp-vendor&references=SPT-1001")
        assert page.locator("#request_type option[value=licence]").count() == 1
        assert page.locator("#organisation_id").is_visible()  # staff file on a client's behalf
        assert page.locator("input[name=references]").input_value() == "SPT-1001"
        assert_accessible(page)
        page.goto("/")
        assert "LIC" in page.inner_text("main")
        assert_accessible(page)


def test_the_form_refuses_what_it_cannot_take_with_a_page(browser: Browser, system: System) -> None:
    with watched_page(browser, system.url("portal"), "en") as watched:
        page = watched.page
        sign_in(page, ANNE, system.demo_password)
        page.goto("/requests/new?desk=saas-desk")
        fields = {
            name: page.locator(f"#new-request-form input[name={name}]").input_value()
            for name in ("csrf", "desk", "idempotency")
        }
        typed = {**fields, "request_type": "problem_report", "priority": "low",
                 "subject": "Slow export", "description": "An hour."}  # fmt: skip
        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        with httpx.Client(base_url=system.url("portal"), cookies=cookies) as client:
            eleven = [("attachments", (f"{n}.txt", b"x", "text/plain")) for n in range(11)]
            answer = client.post("/requests/new", data=typed, files=eleven)
            assert answer.status_code == 413, answer.status_code
            forged = client.post("/requests/new", data={**typed, "csrf": "forged"}, files=[])
            assert forged.status_code == 403
            assert 'value="Slow export"' in forged.text  # kept
            stranger = client.post(  # intake refuses: not a person of her organisation
                "/requests/new", data={**typed, "participants": "carla@globex.example"}
            )
            assert stranger.status_code == 422
            assert 'id="participants-error"' in stranger.text
            assert 'value="Slow export"' in stranger.text
            other = client.get("/requests/new?desk=no-such-desk")
            assert other.status_code == 200  # the first desk of hers instead
        assert declared_too_large(system.url("portal"), cookies).startswith(b"HTTP/1.1 413")


def declared_too_large(base_url: str, cookies: dict[str, str]) -> bytes:
    """The status line answered to a form declaring 40 MiB, before any of it is sent."""
    host, port = base_url.removeprefix("http://").split(":")
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    head = (f"POST /requests/new HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {40 * 2**20}\r\n\r\n")  # fmt: skip
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode())
        return connection.recv(200)
