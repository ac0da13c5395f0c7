"""Survey links: genuine ones read back, altered or foreign ones refused, expired ones told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from desk_platform.survey_tokens import (
    ExpiredToken,
    InvalidToken,
    SurveyClaim,
    make_token,
    read_token,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLAIM = SurveyClaim(
    "t-1", "PRB-1001", "saas-desk", "anne@acme.example", "fr", NOW + timedelta(days=30)
)


def test_a_genuine_token_reads_back_its_claim() -> None:
    token = make_token("s3cret", CLAIM)
    assert read_token("s3cret", token, NOW) == CLAIM
    assert "/" not in token and "+" not in token and "=" not in token  # URL-safe


def test_an_expired_token_is_told_apart_from_a_forged_one() -> None:
    token = make_token("s3cret", CLAIM)
    with pytest.raises(ExpiredToken) as expired:
        read_token("s3cret", token, CLAIM.expires_at)
    assert expired.value.claim.key == "PRB-1001"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.replace(t[3], "A" if t[3] != "A" else "B", 1),  # payload altered
        lambda t: t[:-2] + ("xx" if not t.endswith("xx") else "yy"),  # signature altered
        lambda t: t.split(".")[0],  # no signature
        lambda t: "",
        lambda t: "." + t,
        lambda t: "é.é",
    ],
)
def test_altered_tokens_are_refused(tamper: object) -> None:
    token = make_token("s3cret", CLAIM)
    with pytest.raises(InvalidToken):
        read_token("s3cret", tamper(token), NOW)  # type: ignore[operator]


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(InvalidToken):
        read_token("s3cret", make_token("other", CLAIM), NOW)


def test_no_secret_no_token() -> None:
    with pytest.raises(ValueError):
        make_token("", CLAIM)
