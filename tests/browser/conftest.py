"""The browser tests' system and browser: one whole system (every service as a process, the
portal among them, on a fresh database and fresh topics) for every browser test, and one
headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import launch
from e2e_support import isolated_system
from playwright.sync_api import Browser, sync_playwright
from system import System


@pytest.fixture(scope="session")
def system(database_url: str, kafka_bootstrap: str, tmp_path_factory: Any) -> Iterator[System]:
    state = tmp_path_factory.mktemp("browser")
    # the browser tests file many requests as Anne in one hour: intake's flood limits raised
    limits = {f"REQUESTS_{k}_HOURLY_LIMIT": "100000" for k in ("SUBMITTER", "DOMAIN", "DESK")}
    with isolated_system(
        database_url, kafka_bootstrap, state, "browser", environment=limits
    ) as running:
        yield running


@pytest.fixture(scope="module")
def browser(system: System) -> Iterator[Browser]:
    """One Chromium per module, started after the system (Playwright's synchronous API runs
    an event loop of its own while it lives: browser tests are synchronous functions)."""
    with sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()
