"""An inbound message as the gateway understands it: plain values, already decoded."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property


@dataclass(frozen=True)
class SmtpEnvelope:
    """What the SMTP conversation said: `MAIL FROM` ('' for a bounce) and the `RCPT TO`s, the
    client's address (`peer`) and its HELO/EHLO name (both for SPF)."""

    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    peer: str = ""
    helo: str = ""


@dataclass(frozen=True)
class MailAttachment:
    """A file carried by the message (also inline images and forwarded messages)."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class InboundMail:
    """A parsed message. Addresses are lower-cased; Message-IDs keep their angle brackets.

    `text` is the whole readable text (the text part, or the HTML part turned into text);
    `reply` is only what the sender wrote this time (quoted history and signature removed).
    `headers` holds the lower-cased names and values of every header (first occurrence).
    `problems` names what was wrong with the message's structure (broken MIME, bad headers);
    `unparseable` says the body could not be read at all (only the headers, if any, are known).
    Addresses come from the headers as sent: an RFC 2047 word is only ever a display name.
    `authentication_results` holds every `Authentication-Results` header, topmost first.
    """

    message_id: str | None
    sender: str | None
    sender_name: str = ""
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str = ""
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    content_type: str = "text/plain"
    headers: Mapping[str, str] = field(default_factory=dict)
    text: str = ""
    reply: str = ""
    language: str | None = None  # Content-Language, when the client said it
    attachments: tuple[MailAttachment, ...] = ()
    problems: tuple[str, ...] = ()
    envelope: SmtpEnvelope = SmtpEnvelope()
    fingerprint: str = ""  # sha256 of the raw bytes: the identity of a message without an id
    date: datetime | None = None  # the Date header (UTC when it names no zone); None: unreadable
    authentication_results: tuple[str, ...] = ()
    unparseable: bool = False

    @property
    def identity(self) -> str:
        """What makes a delivery of this message the same as another: its Message-ID."""
        return self.message_id or f"<{self.fingerprint or 'none'}@no-message-id>"

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")
