"""The mail of a recorded row, as the relay receives it: text with an HTML alternative,
threaded, marked automatic, in 7-bit MIME (quoted-printable bodies, RFC 2047 subjects).

`raw_message` writes the bytes directly: the standard library's `email` package (`build_message`
builds with it) spends most of its time folding headers and encoding text in pure Python, about
1.8 ms per notification, several times what the rest of sending a message costs. The bytes say
the same as the package's, header for header and part for part (the tests compare the two,
parsed back, over generated rows); `raw_message` hands a row over to `build_message` (None)
where the package must decide: a non-ASCII address or threading header, or a line it would
have to fold inside a word. Both refuse a header that would contain a line break (a recipient
`x@y\\r\\nBcc: z`, say): such a message can never be sent.
"""

from __future__ import annotations

import binascii
import functools
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime
from typing import Any

from aiosmtplib.email import extract_addresses

UTF8_QP = Charset("utf-8")
UTF8_QP.body_encoding = QP  # readable in raw form, unlike base64
NO_REPLIES = "OOF, AutoReply"  # X-Auto-Response-Suppress: no out-of-office back
LINE = 78  # where header lines are folded (RFC 5322's "SHOULD")
LONGEST = 998  # what no line may exceed (its "MUST")
# RFC 2047 "Q": what an encoded word in a Subject may carry as is; space is "_"
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q_BYTE = [chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256)]
_Q_BYTE[ord(" ")] = "_"
_Q_ASCII = {chr(b): _Q_BYTE[b] for b in range(128)}
_WORD_START, _WORD_END = "=?utf-8?q?", "?="
_WORD_ROOM = 75 - len(_WORD_START) - len(_WORD_END)  # an encoded word is 75 characters at most


@dataclass(frozen=True)
class RawMessage:
    """A message ready for the wire: the envelope's sender and recipients, and its bytes."""

    sender: str
    recipients: tuple[str, ...]
    content: bytes


def _text(body: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype)
    part.set_payload(body, UTF8_QP)
    return part


def _subject(subject: str) -> str:
    """RFC 2047 only where needed: the leading `[KEY]` stays readable in the raw header."""
    if subject.isascii():
        return subject
    first, _, rest = subject.partition(" ")
    if not (first.isascii() and rest):
        return Header(subject, "utf-8", header_name="Subject").encode()
    header = Header(first, "us-ascii", header_name="Subject")
    header.append(rest, "utf-8")  # Header puts the space back between the two
    return header.encode()


def _headers(row: Mapping[str, Any], sender: str, now: datetime) -> list[tuple[str, str]]:
    """The message's own headers, in order, with the subject still to encode."""
    headers = [
        ("From", row["sender"] or sender),
        ("To", row["recipient"]),
        ("Subject", " ".join(row["subject"].splitlines())),  # a request's words, not a header's end
        ("Message-ID", row["message_id"]),
        ("Date", format_datetime(now)),
    ]
    if row["in_reply_to"]:
        headers.append(("In-Reply-To", row["in_reply_to"]))
    if row["reference_ids"]:
        headers.append(("References", " ".join(row["reference_ids"])))
    if row["auto_submitted"]:
        headers.append(("Auto-Submitted", row["auto_submitted"]))
        headers.append(("X-Auto-Response-Suppress", NO_REPLIES))
    headers.append(("Content-Language", row["language"]))
    return headers


def _no_line_break(name: str, value: str) -> None:
    if "\r" in value or "\n" in value.replace("\n ", ""):  # only folding may break a line
        raise ValueError(f"{name} header would contain a line break: {value[:200]!r}")


def build_message(row: Mapping[str, Any], sender: str, now: datetime) -> Message:
    """The mail of a recorded row, built with the standard library's classic MIME classes
    (several times cheaper than `EmailMessage`'s header registry, for the same bytes)."""
    html = row["html"]
    message: Message = MIMEMultipart("alternative") if html else _text(row["body"], "plain")
    if html:
        message.attach(_text(row["body"], "plain"))
        message.attach(_text(html, "html"))
    for name, value in _headers(row, sender, now):
        message[name] = _subject(value) if name == "Subject" else value
    for name, value in message.items():
        _no_line_break(name, value)
    return message


def raw_message(row: Mapping[str, Any], sender: str, now: datetime) -> RawMessage | None:
    """The mail of a recorded row as the bytes sent (what `build_message` would send), or
    None where the `email` package must build it; raises ValueError as `build_message` does."""
    headers = _headers(row, sender, now)
    lines: list[str] = []
    for name, value in headers:
        _no_line_break(name, value)
        if name == "Subject":
            lines.append(_subject_line(value))
        elif not value.isascii():
            return None  # an address or a threading header in UTF-8: the package decides
        else:
            lines.append(_folded(name, value))
    if any(len(line) > LONGEST for text in lines for line in text.split("\n")):
        return None  # a word longer than a line
    html = row["html"]
    if html:
        boundary = f"=_{secrets.token_hex(16)}"  # "=_" is never in quoted-printable text
        parts = [
            f'Content-Type: multipart/alternative;\n boundary="{boundary}"',
            "MIME-Version: 1.0",
            *lines,
            "",
            f"--{boundary}",
            *_part("plain", row["body"]),
            f"--{boundary}",
            *_part("html", html),
            f"--{boundary}--",
            "",
        ]
    else:
        plain = _part("plain", row["body"])
        parts = [plain[0], "MIME-Version: 1.0", plain[1], *lines, *plain[2:]]
    envelope_from = _sender_address(headers[0][1])
    envelope_to = _recipient_addresses(headers[1][1])
    if not (envelope_from and envelope_to):
        return None  # the package's path says what is wrong
    return RawMessage(envelope_from, envelope_to, "\n".join(parts).encode())


def _part(subtype: str, text: str) -> list[str]:
    """A text part's lines: its two headers, a blank line, its body."""
    return [
        f'Content-Type: text/{subtype}; charset="utf-8"',
        "Content-Transfer-Encoding: quoted-printable",
        "",
        _qp(text),
    ]


def _qp(text: str) -> str:
    """Quoted-printable UTF-8 text, its lines ending as the package ends them (CR LF or CR
    alone: LF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return binascii.b2a_qp(text.encode(), istext=True).decode("ascii")


def _folded(name: str, value: str) -> str:
    """`name: value`, folded at spaces into lines of `LINE` characters where it can be."""
    line = f"{name}: {value}"
    if len(line) <= LINE or "\n" in value:  # short, or folded already
        return line
    start = f"{name}:"
    lines: list[str] = []
    current = start
    for word in value.split(" "):
        if current != start and current.strip() and len(current) + 1 + len(word) > LINE:
            lines.append(current)
            current = ""
        current += " " + word
    lines.append(current)
    return "\n".join(lines)


def _subject_line(subject: str) -> str:
    """The Subject header: as is if ASCII (folded), else its words after a leading ASCII one
    (the request's `[KEY]`) in RFC 2047 encoded words, one line each."""
    if subject.isascii():
        return _folded("Subject", subject)
    first, _, rest = subject.partition(" ")
    prefix, text = (
        (f"Subject: {first} ", rest) if first.isascii() and rest else ("Subject: ", subject)
    )
    words = _encoded_words(text, LINE - len(prefix) - len(_WORD_START) - len(_WORD_END))
    if not words[0]:  # no room on the first line: the words begin on the next
        return prefix.rstrip() + "\n " + "\n ".join(words[1:])
    return prefix + "\n ".join(words)


def _encoded_words(text: str, first_room: int) -> list[str]:
    """`text` in encoded words, the first with `first_room` characters of payload (an empty
    first word when that is too small for one character), no character split."""
    words: list[str] = []
    current: list[str] = []
    size, room = 0, first_room
    for char in text:
        piece = _Q_ASCII.get(char) or "".join(_Q_BYTE[b] for b in char.encode())
        if size + len(piece) > room:
            words.append(f"{_WORD_START}{''.join(current)}{_WORD_END}" if current else "")
            current, size, room = [], 0, _WORD_ROOM
        current.append(piece)
        size += len(piece)
    words.append(f"{_WORD_START}{''.join(current)}{_WORD_END}")
    return words


@functools.lru_cache(maxsize=256)
def _sender_address(value: str) -> str | None:
    """The envelope sender of a From header, as the SMTP client takes it from one."""
    addresses = extract_addresses(value)
    return addresses[0] if addresses else None


@functools.lru_cache(maxsize=4096)
def _recipient_addresses(value: str) -> tuple[str, ...]:
    """The envelope recipients of a To header, as the SMTP client takes them from one."""
    return tuple(extract_addresses(value))
