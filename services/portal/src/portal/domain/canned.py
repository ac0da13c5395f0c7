"""Canned replies: a desk's ready texts in one language, which agents insert into a reply and
complete. A text names the request's fields between braces (`FIELDS`: `{key}`, `{subject}`,
`{requester}`, `{agent}`, `{desk}`); `fill` puts the request's values in their place and leaves
any other brace as typed (a text is never a format string: no attribute or index lookups).
Pure: the same text and values give the same reply."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

FIELDS = ("key", "subject", "requester", "agent", "desk")
MAX_TITLE = 100
MAX_BODY = 10_000
_FIELD = re.compile(r"\{([a-z_]+)\}")
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True)
class CannedReply:
    """One ready text of a desk in one language, and who last changed it when."""

    reply_id: uuid.UUID
    policy_id: str
    language: str
    title: str
    body: str
    changed_by: str
    changed_at: datetime


def fill(body: str, values: Mapping[str, str]) -> str:
    """`body` with each `{field}` of `FIELDS` replaced by its value in `values` (empty when
    missing); other braces are kept."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return values.get(name, "") if name in FIELDS else match.group(0)

    return _FIELD.sub(value, body)


def problem(title: str, body: str) -> str | None:
    """Why a canned reply cannot be kept as typed (a catalogue key), or None when it can:
    a title of 1 to `MAX_TITLE` characters, a text of 1 to `MAX_BODY`, no control character
    but line breaks and tabs."""
    if not title.strip() or len(title) > MAX_TITLE or _UNSAFE.search(title) or "\n" in title:
        return "canned.invalid_title"
    if not body.strip() or len(body) > MAX_BODY or _UNSAFE.search(body):
        return "canned.invalid_body"
    return None
