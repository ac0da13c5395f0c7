"""The bytes `raw_message` writes say what the `email` package's message (`build_message`, as
the SMTP client flattens it) says: parsed back, the same headers, the same parts and texts, the
same envelope, for generated rows; and both refuse a header with a line break alike."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from typing import Any

import pytest
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from notifier.adapters.mime import LONGEST, build_message, raw_message

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HEADERS = (
    "From",
    "To",
    "Subject",
    "Message-ID",
    "Date",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "Content-Language",
    "MIME-Version",
)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=400)  # no lone surrogates
IDS = st.from_regex(r"<[a-z0-9.-]{1,90}@[a-z]{1,12}\.example>", fullmatch=True)
ADDRESSES = st.sampled_from(
    ["anne@acme.example", "carla@globex.example", "Anne Martin <anne@acme.example>"]
)


def row_of(**fields: Any) -> dict[str, Any]:
    row = {
        "recipient": "anne@acme.example",
        "sender": "support@saas-desk.example",
        "subject": "[REQ-1001] Demande reçue : Question",
        "body": "Bonjour Anne,\n\nVotre demande est enregistrée.\n",
        "html": "<p>Bonjour Anne,</p>\n<p>Votre demande est enregistrée.</p>\n",
        "message_id": "<t.0123456789abcdef01234567@desk.example>",
        "in_reply_to": "<first@acme.example>",
        "reference_ids": ["<first@acme.example>"],
        "auto_submitted": "auto-generated",
        "language": "fr",
    }
    return row | fields


ROWS = st.builds(
    row_of,
    recipient=ADDRESSES,
    sender=st.one_of(st.none(), ADDRESSES),
    subject=st.one_of(TEXT, TEXT.map(lambda s: f"[REQ-1001] {s}")),
    body=TEXT,
    html=st.one_of(st.none(), TEXT),
    message_id=IDS,
    in_reply_to=st.one_of(st.none(), IDS),
    reference_ids=st.lists(IDS, max_size=12),
    auto_submitted=st.sampled_from([None, "auto-generated", "auto-replied"]),
    language=st.sampled_from(["fr", "en"]),
)


def parsed(content: bytes) -> EmailMessage:
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def meaning(message: EmailMessage) -> dict[str, Any]:
    """What a reader gets: the headers decoded, each part's type and text."""
    parts = list(message.iter_parts()) if message.is_multipart() else [message]
    return {
        "headers": {name: message.get_all(name) for name in HEADERS},
        "type": message.get_content_type(),
        "parts": [(p.get_content_type(), p.get_content_charset(), p.get_content()) for p in parts],
        "defects": [type(d).__name__ for p in [message, *parts] for d in p.defects],
    }


def package(row: dict[str, Any]) -> tuple[Message, bytes]:
    message = build_message(row, "support@desk.example", NOW)
    return message, flatten_message(message)


@settings(max_examples=300, deadline=None)
@given(ROWS)
def test_the_raw_bytes_say_what_the_email_package_says(row: dict[str, Any]) -> None:
    message, flat = package(row)
    raw = raw_message(row, "support@desk.example", NOW)
    assert raw is not None
    assert raw.sender == extract_sender(message)
    assert list(raw.recipients) == extract_recipients(message)
    assert raw.content.isascii()
    assert all(len(line) <= LONGEST for line in raw.content.split(b"\n"))
    assert meaning(parsed(raw.content)) == meaning(parsed(flat))


def test_the_request_key_stays_readable_and_long_headers_are_folded() -> None:
    references = [f"<{i:040x}@desk.example>" for i in range(4)]
    raw = raw_message(row_of(reference_ids=references), "support@desk.example", NOW)
    assert raw is not None
    head = raw.content.decode().split("\n\n", 1)[0]
    assert "\nSubject: [REQ-1001] =?utf-8?q?Demande_re=C3=A7ue_=3A_Question?=\n" in head
    assert all(len(line) <= 78 for line in head.split("\n"))
    assert parsed(raw.content)["References"].split() == references


@pytest.mark.parametrize(
    "fields",
    [
        {"recipient": "zoé@exemple.example"},  # an address in UTF-8 (SMTPUTF8)
        {"in_reply_to": "<réponse@acme.example>"},
        {"subject": "[REQ-1001] " + "x" * 1200},  # a word longer than a line may be
    ],
)
def test_what_only_the_email_package_may_decide_is_left_to_it(fields: dict[str, Any]) -> None:
    assert raw_message(row_of(**fields), "support@desk.example", NOW) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"recipient": "x@acme.example\r\nBcc: evil@evil.example"},
        {"sender": "support@desk.example\nBcc: evil@evil.example"},
        {"reference_ids": ["<a@b>\r\nX-Injected: yes"]},
    ],
)
def test_a_header_with_a_line_break_is_refused_by_both_alike(fields: dict[str, Any]) -> None:
    row = row_of(**fields)
    with pytest.raises(ValueError, match="header would contain a line break") as built:
        build_message(row, "support@desk.example", NOW)
    with pytest.raises(ValueError, match="header would contain a line break") as raw:
        raw_message(row, "support@desk.example", NOW)
    assert str(raw.value) == str(built.value)
