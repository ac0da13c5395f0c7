"""Signed identity: what a verifier accepts and what it refuses (desk_platform.identity)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from desk_contracts.identity import Identity
from desk_platform.identity import InvalidToken, Signer, Verifier, jwks, new_signing_key


def now() -> datetime:
    """The time tokens are signed at: read when signing (they live minutes, a suite longer)."""
    return datetime.now(UTC)


ANNE = Identity("anne@acme.example", "Anne Martin", "acme")


class Keys:
    """A JWKS source that counts its fetches."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.fetches = 0

    async def __call__(self, source: str) -> dict[str, Any]:
        self.fetches += 1
        return self.document


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def verifier(keys: Keys, audience: str = "workflow", clock: Clock | None = None) -> Verifier:
    return Verifier("memory", audience, fetch=keys, clock=clock or Clock())


async def test_a_token_signed_for_the_service_proves_who_calls() -> None:
    key = new_signing_key()
    token = Signer([key]).token(ANNE, "workflow", now())
    assert await verifier(Keys(jwks([key]))).verify(token) == ANNE


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.parametrize("case", ["expired", "audience", "forged", "none", "hmac", "issuer"])
async def test_a_token_that_proves_nothing_is_refused(case: str) -> None:
    key, other = new_signing_key(), new_signing_key(kid="x")
    signer = Signer([key])
    good = signer.token(ANNE, "workflow", now())
    claims = jwt.decode(good, options={"verify_signature": False})
    token = {
        "expired": signer.token(ANNE, "workflow", now() - timedelta(hours=1)),
        "audience": signer.token(ANNE, "sla", now()),
        "forged": Signer([type(key)(key.kid, other.private)]).token(ANNE, "workflow", now()),
        "none": _unsigned(claims),
        "hmac": jwt.encode(claims, "secret", algorithm="HS256", headers={"kid": key.kid}),
        "issuer": Signer([key], issuer="someone").token(ANNE, "workflow", now()),
    }[case]
    with pytest.raises(InvalidToken):
        await verifier(Keys(jwks([key]))).verify(token)


async def test_a_new_key_is_fetched_when_a_token_names_it() -> None:
    old, new = new_signing_key(), new_signing_key()
    keys, clock = Keys(jwks([old])), Clock()
    check = verifier(keys, clock=clock)
    assert await check.verify(Signer([old]).token(ANNE, "workflow", now())) == ANNE
    keys.document = jwks([new, old])  # rotation: the new key is published, then signs
    clock.now += 2
    assert await check.verify(Signer([new, old]).token(ANNE, "workflow", now())) == ANNE
    assert keys.fetches == 2
    # an unknown key does not make every request fetch again
    with pytest.raises(InvalidToken):
        await check.verify(Signer([new_signing_key()]).token(ANNE, "workflow", now()))
    assert keys.fetches == 2


@pytest.mark.parametrize("garbage", ["", "abc", "!!!.x.y", "e30", "bnVsbA.e30.", "x" * 9000])
async def test_garbage_is_refused_as_no_token(garbage: str) -> None:
    with pytest.raises(InvalidToken):
        await verifier(Keys(jwks([new_signing_key()]))).verify(garbage)
