"""Signed identity: what a verifier accepts and what it refuses (desk_platform.identity)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from desk_contracts.identity import Identity
from desk_platform import identity
from desk_platform.identity import (
    LEEWAY_SECONDS,
    REFRESH_SECONDS,
    InvalidToken,
    Signer,
    Verifier,
    jwks,
    new_signing_key,
)


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


class Checks:
    """Counts the signature checks (`jwt.decode`) a verifier makes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decode = jwt.decode

        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return decode(*args, **kwargs)

        monkeypatch.setattr(jwt, "decode", counting)


class Wall(Clock):
    """Epoch seconds, from the real time on, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()


async def test_a_token_accepted_is_not_checked_again_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, checks, wall = new_signing_key(), Checks(monkeypatch), Wall()
    check = Verifier("memory", "workflow", fetch=Keys(jwks([key])), clock=Clock(), wall=wall)
    token = Signer([key]).token(ANNE, "workflow", now(), lifetime=timedelta(minutes=5))
    assert [await check.verify(token) for _ in range(3)] == [ANNE] * 3
    assert checks.count == 1
    wall.now += 5 * 60 + LEEWAY_SECONDS + 1  # past its expiry and the leeway
    with pytest.raises(InvalidToken, match="expired"):
        await check.verify(token)
    with pytest.raises(InvalidToken, match="expired"):
        await check.verify(token)  # forgotten: checked again, and refused again
    assert checks.count == 3


async def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, new = new_signing_key(), new_signing_key()
    keys, clock, checks = Keys(jwks([old])), Clock(), Checks(monkeypatch)
    check = verifier(keys, clock=clock)
    token = Signer([old]).token(ANNE, "workflow", now())
    assert await check.verify(token) == ANNE
    keys.document = jwks([new])  # the old key withdrawn (compromised, say)
    clock.now += REFRESH_SECONDS + 1  # the keys are fetched again at the next token
    with pytest.raises(InvalidToken, match="unknown key"):
        await check.verify(token)
    assert checks.count == 1  # refused before any signature check


async def test_a_verifier_remembers_a_bounded_number_of_tokens_the_least_used_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(identity, "REMEMBERED_TOKENS", 2)
    key, checks = new_signing_key(), Checks(monkeypatch)
    check = verifier(Keys(jwks([key])))
    people = [Identity(f"p{n}@acme.example", f"P {n}", "acme") for n in range(3)]
    tokens = [Signer([key]).token(person, "workflow", now()) for person in people]
    await check.verify(tokens[0])
    await check.verify(tokens[1])
    assert await check.verify(tokens[0]) == people[0] and checks.count == 2  # used again
    await check.verify(tokens[2])  # the third: the least recently used (1) is forgotten
    assert checks.count == 3
    assert await check.verify(tokens[0]) == people[0] and checks.count == 3  # remembered
    assert await check.verify(tokens[1]) == people[1] and checks.count == 4  # checked again


async def test_a_refused_token_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    key, checks = new_signing_key(), Checks(monkeypatch)
    check = verifier(Keys(jwks([key])))
    token = Signer([key]).token(ANNE, "sla", now())  # for another service
    for _ in range(2):
        with pytest.raises(InvalidToken, match="not for workflow"):
            await check.verify(token)
    assert checks.count == 2


async def test_remembered_tokens_outlive_a_fetch_of_the_same_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, checks = new_signing_key(), Checks(monkeypatch)
    keys, clock = Keys(jwks([key])), Clock()
    check = verifier(keys, clock=clock)
    token = Signer([key]).token(ANNE, "workflow", now())
    assert await check.verify(token) == ANNE
    clock.now += REFRESH_SECONDS + 1  # the keys are fetched again, unchanged
    assert await check.verify(token) == ANNE
    assert keys.fetches == 2 and checks.count == 1


class PausedKeys(Keys):
    """A JWKS source whose fetches wait until `go` is set."""

    def __init__(self, document: dict[str, Any]) -> None:
        super().__init__(document)
        self.go = asyncio.Event()

    async def __call__(self, source: str) -> dict[str, Any]:
        await self.go.wait()
        return await super().__call__(source)


async def test_callers_sharing_a_remembered_token_while_its_key_is_withdrawn_are_refused() -> None:
    old = new_signing_key()
    keys, clock = PausedKeys(jwks([old])), Clock()
    check = verifier(keys, clock=clock)
    keys.go.set()
    token = Signer([old]).token(ANNE, "workflow", now())
    assert await check.verify(token) == ANNE
    keys.go.clear()
    keys.document = jwks([new_signing_key()])
    clock.now += REFRESH_SECONDS + 1
    calls = [asyncio.create_task(check.verify(token)) for _ in range(3)]
    await asyncio.sleep(0)  # all waiting on the fetch
    keys.go.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, InvalidToken) and "unknown key" in str(o) for o in outcomes)
