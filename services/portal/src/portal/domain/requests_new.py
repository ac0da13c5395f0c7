"""What the home page and the new-request form decide (pure): the desks a person belongs to,
the request types they may create there and in which role, the files they upload (bounded,
their names made safe), the participants they type, intake's refusals by field, and whether a
request someone reads shows an attachment.

The desks come as `GET /desks` tells them (`desk_policies.description`, as dicts); who belongs
where is decided by `desk_policies.audience.granted_roles` from the person's verified identity:
a person of an organisation belongs to every desk where their organisation gives them a
customer role, staff to the desks where the directory grants them a support role.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from desk_contracts.identity import Identity
from desk_policies.audience import granted_roles
from desk_policies.model import DeskPolicy, Side

MAX_FILENAME = 200
MAX_CONTENT_TYPE = 200
MAX_FILES = 10
COMPLEMENTARY = ("product_version", "company", "contact", "error_message")
# the longest each typed field may be (intake's own bounds: `intake.domain.submission`)
LIMITS = {
    "subject": 200, "description": 100_000, "product_version": 100, "company": 200,
    "contact": 500, "error_message": 100_000, "participants": 50 * 330, "organisation_id": 200,
    "requester": 320, "references": 33,
}  # fmt: skip
REQUEST_KEY = re.compile(r"^[A-Z][A-Z0-9]{0,19}-[0-9]{1,12}$")
_CONTENT_TYPE = re.compile(
    r"^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,99}/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]{0,99}$"
)
READING_SIDES = (Side.CUSTOMER, Side.SUPPORT)


@dataclass(frozen=True)
class UploadLimits:
    """How large one attached file and all of a request's files together may be (bytes)."""

    per_file: int = 10 * 1024 * 1024
    total: int = 25 * 1024 * 1024
    files: int = MAX_FILES

    @property
    def body(self) -> int:
        """The largest form body read: every file at its limit plus room for the typed text."""
        return self.total + 2 * 1024 * 1024


DEFAULT_UPLOADS = UploadLimits()


def desk_roles(identity: Identity, policy: DeskPolicy) -> tuple[str, ...]:
    """The roles `identity` acts in at `policy`'s desk that read requests (customer or
    support side), in the order intake would choose them."""
    return tuple(
        r
        for r in granted_roles(identity, policy)
        if (role := policy.role(r)) is not None and role.side in READING_SIDES
    )


def member_desks(
    identity: Identity, policies: Mapping[str, DeskPolicy], desks: Iterable[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """The desks of `desks` (as `GET /desks` tells them) `identity` belongs to."""
    return [
        d
        for d in desks
        if (policy := policies.get(str(d.get("id")))) is not None and desk_roles(identity, policy)
    ]


def creatable_types(
    desk: Mapping[str, Any], roles: Sequence[str]
) -> list[tuple[Mapping[str, Any], str]]:
    """The request types of `desk` a person holding `roles` may create, each with the role
    they create it in (the first of theirs its creators name)."""
    found = []
    for request_type in desk.get("request_types", ()):
        role = next((r for r in roles if r in request_type.get("creators", ())), None)
        if role is not None:
            found.append((request_type, role))
    return found


def safe_filename(name: str | None) -> str:
    """A file's name as stored: no folder, no control or format character, at most
    `MAX_FILENAME` characters (keeping its extension), never empty."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join(
        c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C"
    )
    base = base.strip().strip(".") or "attachment"
    if len(base) > MAX_FILENAME:
        stem, dot, extension = base.rpartition(".")
        keep = extension if dot and len(extension) <= 20 else ""
        base = (stem if keep else base)[: MAX_FILENAME - len(keep) - 1] + (
            "." + keep if keep else ""
        )
        base = base[:MAX_FILENAME]
    return base


def safe_content_type(sent: str | None) -> str:
    """The content type as sent when it is one (`type/subtype`, no parameters), else
    `application/octet-stream`."""
    value = (sent or "").split(";")[0].strip()
    return (
        value
        if len(value) <= MAX_CONTENT_TYPE and _CONTENT_TYPE.match(value)
        else ("application/octet-stream")
    )


def shown_fields(*, staff: bool) -> frozenset[str]:
    """The fields of intake's body the form shows (a refusal of another is told atop it)."""
    fields = {"request_type", "priority", "subject", "description", "attachments",
              "participants", *COMPLEMENTARY}  # fmt: skip
    return frozenset(fields | ({"organisation_id", "requester"} if staff else set()))


def participants_of(text: str) -> list[str]:
    """The addresses typed one a line (blank lines and repeats dropped)."""
    lines = (line.strip() for line in text.replace(",", "\n").splitlines())
    return list(dict.fromkeys(line for line in lines if line))


def refused_fields(answer: Any) -> dict[str, str]:
    """Intake's refusal (`{"detail": [{"loc": [...], "msg": ...}]}`) as field -> reason; a
    header or an unknown place counts as the whole form (`""`)."""
    found: dict[str, str] = {}
    details = answer.get("detail") if isinstance(answer, Mapping) else None
    if not isinstance(details, list):
        return {"": str(details or "")}
    for entry in details:
        if not isinstance(entry, Mapping):
            continue
        loc = [str(p) for p in entry.get("loc", ())]
        field = loc[1] if len(loc) > 1 and loc[0] == "body" else ""
        found.setdefault(field, str(entry.get("msg", "")))
    return found


def attachment_named(view: Mapping[str, Any], sha256: str) -> Mapping[str, Any] | None:
    """The attachment of `sha256` among the files the request `view` (workflow's
    `GET /requests/{key}`: those of every entry its reader sees) lists, or None."""
    for attachment in view.get("attachments") or ():
        if isinstance(attachment, Mapping) and attachment.get("sha256") == sha256:
            return attachment
    return None


def content_disposition(filename: str) -> str:
    """`attachment` with the name in RFC 5987 form (and a plain ASCII fallback)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
