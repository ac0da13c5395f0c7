"""Raw bytes -> `InboundMail`, with the standard library's `email` package (modern policy).

Whatever the bytes, `parse` returns an `InboundMail`: a header that cannot be read is left
empty and named in `problems`, so routing can still drop or refuse the message clearly; a message
whose structure cannot be read at all (MIME nested deeper than the parser's recursion allows, or
any other failure of the parser) keeps only its headers and is marked `unparseable`.

Addresses are read from the headers as sent, before any RFC 2047 decoding: an encoded word is a
display name, never an address (`=?utf-8?q?boss=40acme.example?= <mallory@evil.example>` is
mallory's mail).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses, parsedate_to_datetime

from intake.domain.mail.message import InboundMail, MailAttachment, SmtpEnvelope
from intake.domain.mail.text import (
    MAX_PARSED_CHARS,
    decode,
    html_to_text,
    latest_reply,
    tidy,
    unflow,
)

MAX_PARTS = 500  # a message with more MIME parts than this is read up to there
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "message/rfc822": ".eml",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "application/pdf": ".pdf",
}


def parse(raw: bytes, envelope: SmtpEnvelope | None = None) -> InboundMail:
    envelope = envelope or SmtpEnvelope()
    try:
        return _parse(raw, envelope)
    except Exception as error:  # RecursionError on deep MIME nesting, or a parser bug
        return _unparseable(raw, envelope, f"unparseable message ({type(error).__name__})")


def _parse(raw: bytes, envelope: SmtpEnvelope) -> InboundMail:
    problems: list[str] = []
    message = email.message_from_bytes(raw, policy=email.policy.default)
    problems += _defects(message)
    headers, raw_headers, auth_results = _headers(message, problems)
    sender_name, sender = _sender(raw_headers, problems)
    text, html, attachments = _body(message, problems)
    readable = text if text.strip() else html_to_text(html) if html else ""
    readable = tidy(readable[:MAX_PARSED_CHARS])
    language = headers.get("content-language", "").split(",")[0].strip().lower()[:2] or None
    message_ids = _message_ids(headers.get("message-id", ""))
    return InboundMail(
        message_id=message_ids[0] if message_ids else None,
        sender=sender,
        sender_name=sender_name,
        to=tuple(a for _, a in _addresses(raw_headers.get("to", ""), problems)),
        cc=tuple(a for _, a in _addresses(raw_headers.get("cc", ""), problems)),
        subject=" ".join(headers.get("subject", "").split())[:998],
        in_reply_to=_message_ids(headers.get("in-reply-to", "")),
        references=_message_ids(headers.get("references", "")),
        content_type=_content_type(message),
        headers=headers,
        text=readable,
        reply=latest_reply(readable),
        language=language,
        attachments=tuple(attachments),
        problems=tuple(dict.fromkeys(problems)),
        envelope=envelope,
        fingerprint=hashlib.sha256(raw).hexdigest(),
        date=_date(headers.get("date", "")),
        authentication_results=auth_results,
    )


def _unparseable(raw: bytes, envelope: SmtpEnvelope, problem: str) -> InboundMail:
    """What can still be said of a message whose structure cannot be read: its headers only."""
    problems = [problem]
    try:
        message = BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
        headers, raw_headers, auth_results = _headers(message, problems)
        sender_name, sender = _sender(raw_headers, problems)
    except Exception:
        headers, auth_results, sender_name, sender = {}, (), "", None
    message_ids = _message_ids(headers.get("message-id", ""))
    return InboundMail(
        message_id=message_ids[0] if message_ids else None,
        sender=sender,
        sender_name=sender_name,
        subject=" ".join(headers.get("subject", "").split())[:998],
        headers=headers,
        problems=tuple(dict.fromkeys(problems)),
        envelope=envelope,
        fingerprint=hashlib.sha256(raw).hexdigest(),
        date=_date(headers.get("date", "")),
        authentication_results=auth_results,
        unparseable=True,
    )


def _defects(message: Message) -> list[str]:
    return [type(defect).__name__ for defect in getattr(message, "defects", [])]


def _headers(
    message: Message, problems: list[str]
) -> tuple[dict[str, str], dict[str, str], tuple[str, ...]]:
    """Every header's first value, decoded (RFC 2047 words), without raising on bad ones; the
    same values as sent (unfolded, not decoded), to read addresses from; and every
    Authentication-Results header, topmost first."""
    headers: dict[str, str] = {}
    raw_headers: dict[str, str] = {}
    auth_results: list[str] = []
    for name, raw_value in message.raw_items():
        key = str(name).strip().lower()
        if key == "authentication-results":
            auth_results.append(_unfold(str(raw_value)))
        if key in headers:
            continue
        raw_headers[key] = _unfold(str(raw_value))
        headers[key] = _decode_header(str(raw_value), key, problems)
    return headers, raw_headers, tuple(auth_results)


def _unfold(value: str) -> str:
    value = re.sub(r"\r?\n[ \t]+", " ", value).strip()
    if any("\udc80" <= c <= "\udcff" for c in value):  # raw 8-bit bytes in a header
        value = decode(value.encode("utf-8", "surrogateescape"), None)
    return value


def _decode_header(value: str, name: str, problems: list[str]) -> str:
    value = _unfold(value)
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        problems.append(f"unreadable header {name}")
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _sender(raw_headers: dict[str, str], problems: list[str]) -> tuple[str, str | None]:
    """The one mailbox of `From` (else of `Sender`); several From mailboxes name no sender."""
    senders = _addresses(raw_headers.get("from", ""), problems)
    if len(senders) > 1:
        problems.append("several From addresses")
        return "", None
    senders = senders or _addresses(raw_headers.get("sender", ""), problems)[:1]
    return senders[0] if senders else ("", None)


def _addresses(value: str, problems: list[str]) -> list[tuple[str, str]]:
    """(display name, lower-cased address) of each mailbox in a header value as sent: the
    addresses are read before any RFC 2047 decoding, the display names decoded after."""
    found: list[tuple[str, str]] = []
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    for name, address in pairs:
        address = address.strip().lower()
        if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address):
            found.append((_decode_header(name, "display name", problems).strip(), address))
    return found


def _date(value: str) -> datetime | None:
    try:
        date = parsedate_to_datetime(value)
    except Exception:
        return None
    return date.replace(tzinfo=UTC) if date.tzinfo is None else date.astimezone(UTC)


def _message_ids(value: str) -> tuple[str, ...]:
    found: dict[str, str] = {}
    for message_id in _MESSAGE_ID.findall(value):
        found.setdefault(message_id.lower(), message_id)
    return tuple(found.values())


def _content_type(part: Message) -> str:
    try:
        return str(part.get_content_type()).lower()
    except Exception:
        return "text/plain"


def _body(message: Message, problems: list[str]) -> tuple[str, str, list[MailAttachment]]:
    """The first text/plain and text/html bodies, and every other part as an attachment."""
    text, html = "", ""
    attachments: list[MailAttachment] = []
    for part in _leaves(message, problems):
        content_type = _content_type(part)
        filename = _filename(part)
        disposition = _disposition(part)
        if part is not message and content_type.startswith("message/"):
            attachments.append(_attachment(part, filename, content_type, len(attachments)))
            continue
        if content_type.startswith("multipart/"):  # broken MIME: no boundary found, read as text
            content_type = "text/plain"
        if filename is None and disposition != "attachment" and content_type.startswith("text/"):
            body = _text_of(part, problems)
            if content_type == "text/html":
                html = html or body
                continue
            if content_type == "text/plain" or not text:
                if not text:
                    text = body
                continue
        attachments.append(_attachment(part, filename, content_type, len(attachments)))
    return text, html, attachments


def _leaves(message: Message, problems: list[str]) -> list[Message]:
    """The message's leaf parts in order; a forwarded message (message/*) is one leaf."""
    leaves: list[Message] = []
    stack: list[Message] = [message]
    while stack:
        part = stack.pop()
        if len(leaves) >= MAX_PARTS:
            problems.append(f"more than {MAX_PARTS} parts")
            break
        nested = part.get_payload() if part.is_multipart() else None
        if part is not message and _content_type(part).startswith("message/"):
            leaves.append(part)
        elif isinstance(nested, list):
            stack.extend(reversed([p for p in nested if isinstance(p, Message)]))
        else:
            leaves.append(part)
    return leaves


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return "attachment"
    if name is None:
        return None
    name = " ".join(str(name).replace("/", "_").replace("\\", "_").split())
    return name[:255] or "attachment"


def _disposition(part: Message) -> str:
    try:
        return str(part.get_content_disposition() or "")
    except Exception:
        return ""


def _payload(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    if isinstance(raw, list):  # a message/rfc822 part: its message, as bytes
        try:
            return b"".join(m.as_bytes() for m in raw if isinstance(m, Message))
        except Exception:
            return b""
    return b""


def _text_of(part: Message, problems: list[str]) -> str:
    payload = _payload(part)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
        problems.append("unreadable charset")
    text = decode(payload, charset)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    try:
        flowed = str(part.get_param("format", "") or "").lower() == "flowed"
        delsp = str(part.get_param("delsp", "") or "").lower() == "yes"
    except Exception:
        flowed, delsp = False, False
    return unflow(text, delsp) if flowed else text


def _attachment(part: Message, filename: str | None, content_type: str, n: int) -> MailAttachment:
    if filename is None:
        filename = f"part-{n + 1}{_EXTENSIONS.get(content_type, '.bin')}"
    return MailAttachment(filename=filename, content_type=content_type, data=_payload(part))
