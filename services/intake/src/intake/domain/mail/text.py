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

# Every pattern below reads one line at a time and is anchored at its start: none of them can
# cost more than a line's length (a pattern spanning lines with `\s*` costs the square of the text).
_QUOTE_PREFIX = re.compile(r"(?:>[ \t]*)*")
_ATTRIBUTION_START = re.compile(r"(?:Le|On|Am)\s")
# The end of a "Le ... a écrit :" / "On ... wrote:" line that the sender's client wrapped.
_ATTRIBUTION_END = re.compile(r"(?:a écrit|wrote|schrieb)\s?:\Z")
# What phones and webmails append under the message ("Envoyé de mon iPhone", "Get Outlook for iOS").
_DEVICE_LINE = re.compile(
    r"(?:envoy[ée] (?:de|depuis) (?:mon|ma|mon appareil|l'application)\b|"
    r"sent from my |sent from (?:outlook|mail|yahoo)|"
    r"get outlook for |t[ée]l[ée]chargez outlook pour |"
    r"von meinem .* gesendet\Z)",
    re.IGNORECASE,
)
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


def _unwrap_attributions(text: str) -> str:
    """A "Le ... a écrit :" / "On ... wrote:" line that the sender's client wrapped over two
    lines, joined again (so the reply parser recognises it)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and _wrapped_attribution(line, lines[i + 1]):
            out.append(line + " " + lines[i + 1].rstrip(" \t"))
            i += 2
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _wrapped_attribution(first: str, second: str) -> bool:
    head = _unquoted(first)
    if not _ATTRIBUTION_START.match(head) or not 5 <= len(head) - 3 <= 200:
        return False
    tail = _unquoted(second).rstrip(" \t")
    if not tail.endswith(":"):
        return False
    end = _ATTRIBUTION_END.search(tail, max(0, len(tail) - 12))
    return end is not None and end.start() <= 120


def _unquoted(line: str) -> str:
    prefix = _QUOTE_PREFIX.match(line)
    return line[prefix.end() :] if prefix else line


def _without_quoted_tail(text: str) -> str:
    """Trailing lines that are empty or quoted ("> ...") removed (the first line stays)."""
    lines = text.split("\n")
    while len(lines) > 1 and (not lines[-1] or lines[-1].startswith(">")):
        lines.pop()
    return "\n".join(lines)


def _without_device_line(text: str) -> str:
    """The last line removed when a phone or webmail wrote it ("Envoyé de mon iPhone")."""
    lines = text.rstrip().split("\n")
    if _DEVICE_LINE.match(lines[-1].strip()):
        lines.pop()
    return "\n".join(lines)


def latest_reply(text: str) -> str:
    """What the sender wrote this time: quoted history ("Le ... a écrit :", "De : ... Envoyé :",
    "On ... wrote:", "-----Original Message-----", "> " lines) and signature removed."""
    if not text.strip():
        return ""
    # Blank-only lines go first: the reply parser's patterns cost the square of a run of them.
    text = _unwrap_attributions(_short_lines(tidy(text[:MAX_REPLY_INPUT])))
    try:
        replies = _REPLY_PARSER.read(text).replies
        body = str(replies[0].body) if replies else text
    except Exception:  # the parser failed on odd input: keep the whole text
        body = text
    return tidy(_without_device_line(_without_quoted_tail(body)))
