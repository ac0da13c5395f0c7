"""Hypothesis: whatever bytes reach the gateway, parsing and routing give a decision (or a clear
refusal), never an exception: random bytes, corpus messages cut and spliced, hostile headers."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mail_world import CONFIG, CORPUS, DIRECTORY, POLICIES, TICKETS, through_mx

from intake.domain.mail import Comment, Defer, Drop, NewRequest, Refuse, SmtpEnvelope, parse, route
from intake.domain.mail.text import latest_reply

DECISIONS = (NewRequest, Comment, Refuse, Drop, Defer)
SAMPLES = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
ENVELOPE = SmtpEnvelope("someone@acme.example", ("support@saas-desk.example",))

HEADER_NAMES = st.sampled_from(
    ["From", "To", "Cc", "Subject", "Message-ID", "In-Reply-To", "References", "Content-Type",
     "Content-Transfer-Encoding", "Content-Disposition", "Auto-Submitted", "Precedence",
     "Content-Language", "Sender", "MIME-Version"]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["=?utf-8?B?!!!?=", "=?x-unknown?Q?caf=E9?=", "multipart/mixed; boundary=", "<<<@>>>",
         "text/plain; charset=utf-99", "base64", "quoted-printable", "\"unterminated <a@b",
         "anne@acme.example", "<3f6c2a9e-8b1d-4c57-9a0e-2d4b6f8e1a01.x@desk.example>",
         "multipart/report", "attachment; filename*=utf-8''%FF%FE", "Re: [PRB-1001] x"]
    ),
)  # fmt: skip


def decide(raw: bytes) -> object:
    return route(parse(through_mx(raw), ENVELOPE), CONFIG, POLICIES, DIRECTORY, TICKETS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_give_a_decision(raw: bytes) -> None:
    assert isinstance(decide(raw), DECISIONS)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.integers(min_value=0, max_value=20_000),
    st.binary(max_size=200),
    st.integers(min_value=0, max_value=200),
)
def test_corpus_messages_cut_and_spliced_give_a_decision(
    sample: bytes, at: int, noise: bytes, cut: int
) -> None:
    at = at % (len(sample) + 1)
    assert isinstance(decide(sample[:at] + noise + sample[at + cut :]), DECISIONS)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=12),
    st.binary(max_size=512),
)
def test_hostile_headers_give_a_decision(headers: list[tuple[str, str]], body: bytes) -> None:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers)
    raw = head.encode("utf-8", "surrogatepass") + b"\r\n" + body
    assert isinstance(decide(raw), DECISIONS)


NESTING = st.sampled_from(
    [b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n",
     b"Content-Type: multipart/alternative; boundary=\"b%d\"\r\n\r\npreamble\r\n--b%d\r\n",
     b"Content-Type: message/rfc822\r\n\r\n%.0d%.0d",
     b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d--\r\n"]
)  # fmt: skip


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=1500), st.lists(NESTING, min_size=1, max_size=3))
def test_deep_mime_nesting_gives_a_decision(depth: int, kinds: list[bytes]) -> None:
    head = b"From: anne@acme.example\r\nTo: support@saas-desk.example\r\nSubject: x\r\n"
    parts = b"".join(kinds[i % len(kinds)] % (i, i) for i in range(depth))
    raw = head + b"MIME-Version: 1.0\r\n" + parts + b"Content-Type: text/plain\r\n\r\nhi\r\n"
    mail = parse(raw, ENVELOPE)
    decision = route(mail, CONFIG, POLICIES, DIRECTORY, TICKETS)
    assert isinstance(decision, DECISIONS)
    if mail.unparseable:
        assert isinstance(decision, Drop) and "unparseable" in decision.reason


@pytest.mark.parametrize(
    "text",
    ["Le " * 16_000, "a" * 200_000, ("De : x\nEnvoyé : y\n") * 3000, ("> " * 10 + "x\n") * 5000],
)
def test_pathological_text_is_read_in_well_under_a_second(text: str) -> None:
    raw = ("From: anne@acme.example\r\nTo: support@saas-desk.example\r\nSubject: x\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()  # fmt: skip
    started = time.perf_counter()
    assert isinstance(decide(raw), DECISIONS)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    "text",
    ["hi" + "\n>" * 20_000 + "\nx", "On x\n" + "> \n" * 16_000, "hi\n" + " \n" * 20_000 + "x",
     " \n" * 20_000, "\n>" * 20_000 + "\nx", "Le x\n" + ">" * 5000 + " a écrit :\n" * 3000],
)  # fmt: skip
def test_the_reply_is_cut_in_linear_time(text: str) -> None:
    started = time.perf_counter()
    latest_reply(text)
    assert time.perf_counter() - started < 0.5


def test_a_mail_ending_in_thousands_of_quote_marks_parses_in_well_under_a_second() -> None:
    raw = (b"From: anne@acme.example\r\nTo: support@saas-desk.example\r\nSubject: x\r\n"
           b"Content-Type: text/plain\r\n\r\nhello\r\n" + b">\r\n" * 25_000)  # fmt: skip
    assert len(raw) > 75_000
    started = time.perf_counter()
    assert parse(raw, ENVELOPE).reply == "hello"
    assert time.perf_counter() - started < 1.0
