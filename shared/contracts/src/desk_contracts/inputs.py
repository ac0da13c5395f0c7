"""What may enter from outside (HTTP bodies, commands), as reusable field types.

One set of bounds for every input, chosen so that the largest event they can make stays under
`topics.MAX_EVENT_BYTES`: two long texts of `MAX_TEXT` characters at four UTF-8 bytes each,
plus short fields and `MAX_PEOPLE` addresses, come to about 820 kB. Addresses are checked by a
maintained validator (`email-validator`): one address, no display name, no quoted local part
or domain literal, ASCII (an internationalised domain in its xn-- form), lower-cased.
"""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

MAX_TEXT = 100_000  # a description, a comment, an error message (characters)
MAX_LINE = 500  # a one-line free text: a contact, a reason for a priority change
MAX_NAME = 200  # an id, a code, a subject line, an organisation
MAX_ADDRESS = 254  # the longest address SMTP can carry (RFC 5321 path, less the brackets)
MAX_PEOPLE = 50  # participants named in one request
MAX_QUOTED = 80  # characters of someone's input quoted back in a message


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
