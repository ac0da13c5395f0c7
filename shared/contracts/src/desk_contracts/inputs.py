"""What may enter from outside (HTTP bodies, commands), as reusable field types.

One set of bounds for every input, chosen so that the largest event they can make stays under
`topics.MAX_EVENT_BYTES`: two long texts of `MAX_TEXT` characters at four UTF-8 bytes each,
plus short fields and `MAX_PEOPLE` addresses, come to about 820 kB. Addresses are checked by a
maintained validator (`email-validator`): one address, no display name, no quoted local part
or domain literal, ASCII (an internationalised domain in its xn-- form), lower-cased.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

MAX_TEXT = 100_000  # a description, a comment, an error message (characters)
MAX_LINE = 500  # a one-line free text: a contact, a reason for a priority change
MAX_NAME = 200  # an id, a code, a subject line, an organisation
MAX_ADDRESS = 254  # the longest address SMTP can carry (RFC 5321 path, less the brackets)
MAX_PEOPLE = 50  # participants named in one request
MAX_QUOTED = 80  # characters of someone's input quoted back in a message
MIN_YEAR = 2000  # no request of this system is older
MAX_YEAR = 2999  # an instant later than this is a mistake, not a question
MAX_INSTANT = 40  # characters of an instant given from outside (a query's as_of, from, to)
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?",
    re.ASCII,
)


class BadInstant(ValueError):
    """An instant given from outside that is not one this system reads (a sentence why)."""


def instant(text: str) -> datetime:
    """The instant `text` (ISO 8601 with an offset, e.g. `2026-03-02T10:30:00+01:00` or
    `...Z`), in UTC; BadInstant when it is too long, not an instant, naive (a naive time says
    nothing of where it was read), or out of the years this system reads (`MIN_YEAR` to
    `MAX_YEAR`). The one rule of every instant a query names."""
    if len(text) > MAX_INSTANT:
        raise BadInstant(f"an instant is at most {MAX_INSTANT} characters")
    if not _INSTANT.fullmatch(text):
        raise BadInstant("not an ISO 8601 instant (e.g. 2026-03-02T10:30:00+01:00)")
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        raise BadInstant("not an ISO 8601 instant (e.g. 2026-03-02T10:30:00+01:00)") from None
    if found.tzinfo is None or found.utcoffset() is None:
        raise BadInstant("the instant needs its offset from UTC (e.g. +01:00 or Z)")
    if not MIN_YEAR <= found.year <= MAX_YEAR:
        raise BadInstant(f"the instant's year must be between {MIN_YEAR} and {MAX_YEAR}")
    try:
        return found.astimezone(UTC)
    except OverflowError:
        raise BadInstant(f"the instant must be between {MIN_YEAR} and {MAX_YEAR}") from None


def filled(text: str) -> str:
    """`text` unless it is blank (empty, or spaces only); ValueError saying so."""
    if not text.strip():
        raise ValueError("must not be blank")
    return text


# `filled`, documented in the OpenAPI schema as a pattern: at least one character not a space
NOT_BLANK = Field(json_schema_extra={"pattern": r"\S"})

Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
FilledText = Annotated[Text, AfterValidator(filled), NOT_BLANK]  # a text that must say something
Line = Annotated[str, StringConstraints(max_length=MAX_LINE)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME), AfterValidator(filled), NOT_BLANK
]
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]  # an event of a request, by stream version


def quoted(value: object, limit: int = MAX_QUOTED) -> str:
    """`value` quoted for a message about it: at most `limit` characters, escaped (`repr`)."""
    text = str(value)
    return repr(text if len(text) <= limit else text[:limit] + "…")


def address(text: str) -> str:
    """`text` as one e-mail address in lower case; ValueError saying why it is not one."""
    if len(text) > MAX_ADDRESS:
        raise ValueError(f"an e-mail address has at most {MAX_ADDRESS} characters")
    try:
        return _checked(text)
    except EmailNotValidError as error:
        raise ValueError(f"{quoted(text)} is not an e-mail address: {error}") from None


def mail_domain(text: str) -> str:
    """`text` as a mail domain (what follows the @ of an address) in lower case, an
    internationalised one in its xn-- form; ValueError saying why it is not one."""
    if len(text) > MAX_ADDRESS - len("postmaster@"):
        raise ValueError(f"a mail domain has at most {MAX_ADDRESS - len('postmaster@')} characters")
    try:
        return _checked(f"postmaster@{text}").rpartition("@")[2]
    except EmailNotValidError as error:
        reason = str(error).replace("The part after the @-sign", "The domain")
        reason = reason.replace("after the @-sign", "in the domain")
        raise ValueError(f"{quoted(text)} is not a mail domain: {reason}") from None


def _checked(text: str) -> str:
    checked = validate_email(
        text,
        check_deliverability=False,  # syntax only: no DNS at the edge
        allow_smtputf8=False,
        allow_display_name=False,
        allow_quoted_local=False,
        allow_domain_literal=False,
    )
    return (checked.ascii_email or checked.normalized).lower()


# blanks around are dropped; documented as `format: email` in the OpenAPI schema
Address = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=MAX_ADDRESS),
    AfterValidator(address),
    Field(json_schema_extra={"format": "email"}),
]
