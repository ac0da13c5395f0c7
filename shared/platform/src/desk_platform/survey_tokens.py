"""Signed, expiring satisfaction-survey links: the notifier makes them, intake verifies them.

A token is `<payload>.<signature>`, both base64url without padding: the payload is compact
JSON naming the request (id, key, desk), the respondent, their language and the expiry (epoch
seconds); the signature is HMAC-SHA256 of the payload with the deployment's secret. No login is
needed to answer, and nobody can forge a token for another request or stretch its life. Time is
an argument, never read here.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class SurveyClaim:
    """What a valid token vouches for."""

    ticket_id: str
    key: str
    policy_id: str
    respondent: str
    language: str
    expires_at: datetime
    test_clock: str | None = None  # the request lives on this test clock: it expires on its time


class InvalidToken(ValueError):
    """The token is malformed or its signature does not match (forged or altered)."""


class ExpiredToken(ValueError):
    """The token is genuine but its validity ended."""

    def __init__(self, claim: SurveyClaim) -> None:
        super().__init__(f"the survey link of {claim.key} expired on {claim.expires_at:%Y-%m-%d}")
        self.claim = claim


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, payload: str) -> str:
    return _b64(hmac.new(secret.encode(), payload.encode("ascii"), hashlib.sha256).digest())


def make_token(secret: str, claim: SurveyClaim) -> str:
    """A token for `claim`, signed with `secret`."""
    if not secret:
        raise ValueError("a survey secret is needed to sign survey links")
    body = {
        "t": claim.ticket_id,
        "k": claim.key,
        "p": claim.policy_id,
        "r": claim.respondent,
        "l": claim.language,
        "e": int(claim.expires_at.timestamp()),
    }
    if claim.test_clock is not None:
        body["c"] = claim.test_clock
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_sign(secret, payload)}"


def read_token(secret: str, token: str, now: datetime) -> SurveyClaim:
    """The claim of a genuine, unexpired token; raises InvalidToken or ExpiredToken."""
    return unexpired(genuine_claim(secret, token), now)


def unexpired(claim: SurveyClaim, now: datetime) -> SurveyClaim:
    """`claim`, while it is valid at `now`; raises ExpiredToken after."""
    if now >= claim.expires_at:
        raise ExpiredToken(claim)
    return claim


def genuine_claim(secret: str, token: str) -> SurveyClaim:
    """The claim of a genuine token, expired or not (`unexpired` tells); raises InvalidToken."""
    payload, dot, signature = token.partition(".")
    if not dot or not payload or not signature or not secret:
        raise InvalidToken("this survey link is incomplete")
    if not (payload.isascii() and signature.isascii()):
        raise InvalidToken("this survey link is malformed")
    expected = _sign(secret, payload)
    if not hmac.compare_digest(expected.encode(), signature.encode("ascii")):
        raise InvalidToken("this survey link is not one we sent (signature mismatch)")
    try:
        body = json.loads(_unb64(payload))
        claim = SurveyClaim(
            ticket_id=str(body["t"]),
            key=str(body["k"]),
            policy_id=str(body["p"]),
            respondent=str(body["r"]),
            language=str(body["l"]),
            expires_at=datetime.fromtimestamp(int(body["e"]), UTC),
            test_clock=None if body.get("c") is None else str(body["c"]),
        )
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise InvalidToken("this survey link is malformed") from error
    return claim
