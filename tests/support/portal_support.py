"""Test helpers for the portal: a real SMTP sink whose mail a test reads, a browser-like
client that keeps cookies and sends the CSRF token of the page it read, and a directory
seeded with an administrator."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
from aiosmtpd.controller import Controller

from desk_contracts import directory as d
from notifier.adapters.smtp_sink import SaveToFolder
from portal.application import credentials
from portal.application.directory import record

CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')
LINK = re.compile(r"https?://\S+\?token=[A-Za-z0-9_\-]+")
ADMIN = "lea@desk.example"
ADMIN_PASSWORD = "lea-password-123"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MailFolder:
    """The messages an SMTP sink keeps in a folder, one file each."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def messages(self, to: str | None = None) -> list[EmailMessage]:
        found = []
        for path in sorted(self.folder.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            assert isinstance(message, EmailMessage)
            if to is None or message["To"] == to:
                found.append(message)
        return found

    async def wait_for(self, to: str, count: int = 1, timeout: float = 10.0) -> EmailMessage:
        """The `count`-th message to `to`, waiting for it (the portal mails in the background,
        on the test's own event loop when it runs in-process)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.messages(to)
            if len(messages) >= count:
                return messages[count - 1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no message #{count} to {to} in {self.folder}")
            await asyncio.sleep(0.05)

    async def link_to(self, to: str, count: int = 1) -> str:
        """The link in the `count`-th message to `to`."""
        body = (await self.wait_for(to, count)).get_content()
        found = LINK.search(body)
        assert found, body
        return found.group()


class Mailbox(MailFolder):
    """A real SMTP server on a free port keeping each message in a folder."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.port = free_port()
        self.controller = Controller(SaveToFolder(folder), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.controller.stop()


class Browser:
    """A person's browser: cookies kept, each form sent with the CSRF token of its page."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def form_token(self, page: str) -> str:
        answer = await self.client.get(page)
        found = CSRF_FIELD.search(answer.text)
        assert found, (page, answer.status_code, answer.text[:500])
        return found.group(1)

    async def submit(self, page: str, action: str, **fields: str) -> httpx.Response:
        """Open `page`, fill its form and send it to `action`."""
        token = await self.form_token(page)
        return await self.client.post(action, data={**fields, "csrf": token})

    async def sign_in(self, email: str, password: str) -> httpx.Response:
        return await self.submit("/sign-in", "/sign-in", email=email, password=password)

    async def csrf(self) -> str:
        """The session's CSRF token, as `/me` gives it for JSON calls."""
        token = (await self.client.get("/me")).json()["csrf_token"]
        assert token, "no session"
        return str(token)


async def seed_directory(pool: asyncpg.Pool, now: datetime) -> None:
    """Two organisations, an administrator of erp-vendor (team lead) with a password."""
    async with pool.acquire() as conn:
        await record(
            conn,
            [
                d.OrganisationRecorded(occurred_at=now, by="import", organisation_id="acme",
                                       name="ACME SA", domains=("acme.example",)),
                d.OrganisationRecorded(occurred_at=now, by="import", organisation_id="globex",
                                       name="Globex", domains=("globex.example",)),
                d.PersonInvited(occurred_at=now, by="import", email=ADMIN,
                                profile=d.Profile(name="Léa Lead", language="fr")),
                d.PersonActivated(occurred_at=now, by="import", email=ADMIN),
                d.RoleGranted(occurred_at=now, by="import", email=ADMIN, desk_id="erp-vendor",
                              role="team_lead"),
            ],
        )  # fmt: skip
        await credentials.set_password(conn, ADMIN, ADMIN_PASSWORD, now)
