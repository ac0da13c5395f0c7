"""Account mail (activation, confirmation, reset, sign-in links) sent over SMTP in the
person's language. The link's secret appears only in the mail, never in an event or a log.
A page does not wait for the SMTP server: the mail leaves in the background, so how long the
answer takes does not tell whether the address has an account."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage
from email.utils import make_msgid
from urllib.parse import quote

import aiosmtplib
import structlog

from portal.application.people import Mail
from portal.catalogue import text

log = structlog.get_logger(__name__)

PAGES = {  # where each mail's link leads
    "activate": "/activate",
    "confirm": "/activate",
    "already_registered": "/reset",
    "reset": "/reset/choose",
    "sign_in": "/sign-in/link",
}


class Mailer:
    """Sends account mail through one SMTP server, from the desk's address."""

    def __init__(self, host: str, port: int, sender: str, portal_url: str) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.portal_url = portal_url.rstrip("/")
        self._sending: set[asyncio.Task[None]] = set()

    def message(self, mail: Mail) -> EmailMessage:
        page = self.portal_url + PAGES[mail.kind]
        link = f"{page}?token={mail.values['secret']}" if "secret" in mail.values else page
        if "next" in mail.values and "secret" in mail.values:  # where the link leads, once used
            link += f"&next={quote(mail.values['next'], safe='/')}"
        values = {"name": mail.values.get("name", ""), "link": link}
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = text(mail.language, f"mail.{mail.kind}.subject")
        message["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text(mail.language, f"mail.{mail.kind}.body", **values))
        return message

    async def send(self, mail: Mail) -> None:
        """Send `mail` in the background (see module)."""
        task = asyncio.get_running_loop().create_task(self.deliver(mail))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def deliver(self, mail: Mail) -> None:
        """Send `mail` now; a failure is logged (the person can ask for the link again)."""
        try:
            await aiosmtplib.send(
                self.message(mail), hostname=self.host, port=self.port, timeout=10
            )
            log.info("account_mail_sent", kind=mail.kind)
        except (aiosmtplib.SMTPException, OSError) as error:
            log.error("account_mail_failed", kind=mail.kind, error=str(error)[:200])
