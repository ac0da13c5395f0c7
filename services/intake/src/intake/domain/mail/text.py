"""Text of a message: charsets decoded as mail clients really use them, HTML turned into text,
format=flowed unwrapped, and the latest reply cut from its quoted history and signature."""

from __future__ import annotations

import codecs
import re

from inscriptis import get_text  # type: ignore[import-untyped]
from inscriptis.model.config import ParserConfig  # type: ignore[import-untyped]
from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]

MAX_PARSED_CHARS = 200_000  # longer texts are cut before the HTML and reply parsers see them
MAX_REPLY_INPUT = 50_000  # the reply parser's regular expressions see at most this much
MAX_LINE = 2_000  # longer lines are cut for the reply parser (its cost grows with their square)

# Latin-1 and ASCII labels are written by clients that really send windows-1252 (curly quotes,
# the euro sign and oe ligature live in 0x80-0x9F there); browsers decode them the same way.
_WINDOWS_1252_ALIASES = frozenset({"iso-8859-1", "latin-1", "latin1", "us-ascii", "ascii"})
_HTML_CONFIG = ParserConfig(display_links=False, display_images=False)
_REPLY_PARSER = EmailReplyParser(languages=["fr", "en", "de"])

# A "Le ... a écrit :" / "On ... wrote:" line that the sender's client wrapped over two lines.
_WRAPPED_ATTRIBUTION = re.compile(
    r"^((?:>\s*)*(?:Le|On|Am)\s[^\n]{5,200})\n"
    r"((?:>\s*)*[^\n]{0,120}(?:a écrit|wrote|schrieb)\s?:)\s*$",
    re.MULTILINE,
)
# What phones and webmails append under the message ("Envoyé de mon iPhone", "Get Outlook for iOS").
_DEVICE_LINE = re.compile(
    r"\n\s*(?:envoy[ée] (?:de|depuis) (?:mon|ma|mon appareil|l'application)\b[^\n]*|"
    r"sent from my [^\n]*|sent from (?:outlook|mail|yahoo)[^\n]*|"
    r"get outlook for [^\n]*|t[ée]l[ée]chargez outlook pour [^\n]*|"
    r"von meinem [^\n]* gesendet)\s*\Z",
    re.IGNORECASE,
)
_QUOTED_TAIL = re.compile(r"(?:\n(?:>[^\n]*)?)*\Z")
_BLANK_RUNS = re.compile(r"\n{3,}")


def decode(payload: bytes, charset: str | None) -> str:
    """Bytes of a text part in its declared charset; never fails (unknown charsets and bad
    bytes fall back to UTF-8, then windows-1252, which maps every byte)."""
    name = (charset or "").strip().strip('"').lower()
    if name in _WINDOWS_1252_ALIASES:
        name = "windows-1252"
    candidates = [name] if name else []
    candidates += ["utf-8", "windows-1252"]
    for candidate in candidates:
        try:
            codecs.lookup(candidate)
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return payload.decode("latin-1")


def unflow(text: str, delsp: bool = False) -> str:
    """RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    pending = ""
    for line in text.split("\n"):
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        if line.endswith(" ") and line != "-- ":
            pending += line[:-1] if delsp else line
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return "\n".join(out)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body (scripts and styles dropped, layout kept as lines)."""
    html = html[:MAX_PARSED_CHARS]
    if not html.strip():
        return ""
    try:
        text = str(get_text(html, _HTML_CONFIG))
    except Exception:  # a malformed document: keep its characters rather than nothing
        text = re.sub(r"<[^>]*>", " ", html)
    return tidy(text)


def tidy(text: str) -> str:
    """Lines without trailing blanks, non-breaking spaces as spaces, at most one empty line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = text.replace("\u200b", "").replace("\ufeff", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


def _short_lines(text: str) -> str:
    """Lines cut at MAX_LINE: the reply parser's patterns cost the square of a line's length,
    and no quoted-history header is that long."""
    if all(len(line) <= MAX_LINE for line in text.split("\n")):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        out += [line[i : i + MAX_LINE] for i in range(0, len(line), MAX_LINE)] or [""]
    return "\n".join(out)


def latest_reply(text: str) -> str:
    """What the sender wrote this time: quoted history ("Le ... a écrit :", "De : ... Envoyé :",
    "On ... wrote:", "-----Original Message-----", "> " lines) and signature removed."""
    if not text.strip():
        return ""
    text = _WRAPPED_ATTRIBUTION.sub(r"\1 \2", _short_lines(text[:MAX_REPLY_INPUT]))
    try:
        replies = _REPLY_PARSER.read(text).replies
        body = str(replies[0].body) if replies else text
    except Exception:  # the parser failed on odd input: keep the whole text
        body = text
    body = _QUOTED_TAIL.sub("", body)
    body = _DEVICE_LINE.sub("", "\n" + body.rstrip())
    return tidy(body)
