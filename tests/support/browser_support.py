"""Browser tests' helpers: Debian's Chromium driven by Playwright (headless; Playwright cannot
download its own browsers here), axe-core from npm run on every page a test visits, the
Content-Security-Policy watched (a violation fails the test), screenshots for the README.

`PORTAL_SCREENSHOTS=<folder>` keeps each screenshot a test names there (the README's come
from `docs/screenshots`); otherwise they go to the test's temporary folder."""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / "services/portal/node_modules/axe-core/axe.min.js"
BLOCKING = ("serious", "critical")  # axe impacts that fail a page


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, headless (the test command installs it)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
    )


class Watched:
    """A page whose console is watched for Content-Security-Policy violations and errors."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.violations: list[str] = []
        page.on("console", self._console)

    def _console(self, message: ConsoleMessage) -> None:
        # an answer 4xx (a form refused, as designed) is logged as an error too: not counted
        counted = "Content Security Policy" in message.text or message.type == "error"
        if counted and "favicon" not in message.text and "status of 4" not in message.text:
            self.violations.append(message.text)

    def assert_clean(self) -> None:
        assert self.violations == [], f"the browser reported: {self.violations}"


@contextmanager
def watched_page(browser: Browser, base_url: str, language: str = "fr") -> Iterator[Watched]:
    """A fresh browser context (no cookies) on the portal, in `language`."""
    context = browser.new_context(base_url=base_url, locale=language)
    context.set_default_timeout(15_000)
    try:
        watched = Watched(context.new_page())
        yield watched
        watched.assert_clean()
    finally:
        context.close()


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol: the page's CSP does not apply to it
        page.evaluate(AXE.read_text("utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page."""
    found = axe_violations(page)
    assert found == [], f"{page.url}: {found}"


def screenshot(page: Page, name: str, fallback: Path) -> Path:
    """A full-page screenshot named `name` (see module for where it goes)."""
    folder = Path(os.environ.get("PORTAL_SCREENSHOTS") or fallback)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{re.sub(r'[^a-z0-9-]', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, email: str, password: str) -> None:
    """Sign in with a password from the sign-in page; ends on the page it leads to."""
    page.goto("/sign-in")
    page.fill("#email", email)
    page.fill("#password", password)
    with page.expect_navigation():
        page.locator("form[action='/sign-in'] button[type=submit]").click()


def tiny_png() -> bytes:
    """A valid PNG of one pixel."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
