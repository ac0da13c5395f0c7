"""Signed identity between services: the portal signs, intake, workflow and sla verify.

A token is a JWT signed with an asymmetric key (EdDSA, Ed25519), naming its issuer (the portal),
its audience (the one service it is for), its expiry (minutes) and who calls
(`desk_contracts.identity`). Verifiers take the public keys from the portal's JWKS document (a
URL, `/.well-known/jwks.json`) or from a file, keep them for `REFRESH_SECONDS` and fetch again at
once when a token names a key they do not know (at most every `RETRY_SECONDS`): a new key is
published before it signs, so keys rotate without downtime. Only EdDSA and ES256 are accepted
(`alg: none` and HMAC never); a token without `exp`, `iat`, `sub`, `aud` or `iss` is refused.
A verifier remembers the tokens it accepted, as an API gateway caches verified JWTs: the same
token again is not checked again while it has not expired and the key that signed it is still
published under its `kid` (a key withdrawn or changed makes its tokens checked again, and
refused). At most `REMEMBERED_TOKENS`, the least recently used forgotten first, so a token may
be forgotten before it expires (checked again then). A client that reuses its token pays for
one check; the portal signs a token a call, each checked once, which this does not help.

`requires_identity(verifier)` is the FastAPI dependency of every route that needs a caller:
`Authorization: Bearer <token>`, 401 (with `WWW-Authenticate`) for no token, an expired one, a
forged one or one for another service. A service that verifies identity does not start without
the keys to verify it with (`required_identity_keys`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from desk_contracts.identity import Identity, InvalidClaims, identity_from_claims
from desk_platform.logging import configure_logging
from desk_platform.settings import Settings

log = structlog.get_logger(__name__)

ALGORITHMS = ["EdDSA", "ES256"]
ISSUER = "desk-portal"
TOKEN_MINUTES = 5
LEEWAY_SECONDS = 30
REFRESH_SECONDS = 300.0
RETRY_SECONDS = 1.0
OUTAGE_RETRY_SECONDS = 30.0
MAX_TOKEN_CHARS = 8192
REMEMBERED_TOKENS = 4096  # accepted tokens a verifier remembers (least recently used forgotten)


@dataclass(frozen=True)
class SigningKey:
    """A private key and the id (`kid`) its public half is published under."""

    kid: str
    private: Ed25519PrivateKey

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key())
        )
        return {**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def new_signing_key(kid: str | None = None) -> SigningKey:
    """A fresh Ed25519 key (e.g. the development key `scripts/run.sh` makes)."""
    return SigningKey(kid or uuid.uuid4().hex[:16], Ed25519PrivateKey.generate())


def load_signing_keys(place: Path) -> list[SigningKey]:
    """The keys at `place`, a folder of `<kid>.pem` files (newest first: the first signs, all
    are published) or one such file (e.g. a container's secret)."""
    paths = [place] if place.is_file() else list(place.glob("*.pem"))
    keys = []
    for path in sorted(paths, key=lambda p: p.stat().st_mtime, reverse=True):
        private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        keys.append(SigningKey(path.stem, private))
    if not keys:
        raise ValueError(f"{place}: no signing key (<kid>.pem)")
    return keys


def write_signing_key(folder: Path, key: SigningKey) -> Path:
    """Store `key` in `folder` readable by its owner only; return the file."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key.kid}.pem"
    path.write_bytes(key.pem())
    path.chmod(0o600)
    return path


def jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """The JWKS document publishing the public halves of `keys`."""
    return {"keys": [key.public_jwk() for key in keys]}


class Signer:
    """Signs identities for one issuer with its newest key."""

    def __init__(self, keys: list[SigningKey], issuer: str = ISSUER) -> None:
        self.keys = keys
        self.issuer = issuer

    def token(
        self,
        identity: Identity,
        audience: str,
        now: datetime,
        lifetime: timedelta = timedelta(minutes=TOKEN_MINUTES),
    ) -> str:
        """A token saying who `identity` is, for `audience`, valid from `now` for `lifetime`."""
        key = self.keys[0]
        claims = {
            **identity.claims(),
            "iss": self.issuer,
            "aud": audience,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid})


class InvalidToken(Exception):
    """A token that does not prove who calls; the message says why (no secret in it)."""


Fetch = Callable[[str], Awaitable[dict[str, Any]]]


async def _fetch(source: str) -> dict[str, Any]:
    """The JWKS document at `source`: an http(s) URL or a file."""
    if source.startswith(("http://", "https://")):

        def get() -> bytes:
            with urllib.request.urlopen(source, timeout=5) as answer:
                return bytes(answer.read(1_000_000))

        body = await asyncio.to_thread(get)
    else:
        body = await asyncio.to_thread(Path(source).read_bytes)
    document = json.loads(body)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{source}: not a JWKS document")
    return document


def _header(token: str) -> dict[str, Any]:
    """A compact JWS's header, read without PyJWT's character-by-character checks (which cost
    more than the signature: the signature check that follows reads the whole token anyway)."""
    head, dot, _rest = token.partition(".")
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError):
        raise InvalidToken("not a signed token") from None
    if not dot or not isinstance(header, dict):
        raise InvalidToken("not a signed token")
    return header


class Verifier:
    """Checks tokens for one audience against the issuer's published keys."""

    def __init__(
        self,
        source: str,
        audience: str,
        issuer: str = ISSUER,
        *,
        fetch: Fetch = _fetch,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.audience = audience
        self.issuer = issuer
        self._fetch = fetch
        self._clock = clock
        self._wall = wall  # the epoch seconds tokens' `exp` is read against
        self._keys: dict[str, jwt.PyJWK] = {}
        self._published: dict[str, dict[str, Any]] = {}  # each key's JWK as last fetched
        self._accepted: dict[str, _Accepted] = {}  # least recently used first
        self._fetched_at = -1e18
        self._lock = asyncio.Lock()

    async def _refresh(self, min_age: float) -> None:
        async with self._lock:
            if self._clock() - self._fetched_at < min_age:
                return
            try:
                document = await self._fetch(self.source)
            except (OSError, ValueError) as error:
                log.warning("identity_keys_unavailable", source=self.source, error=str(error))
                # the keys known go on serving; the next try in OUTAGE_RETRY_SECONDS, so an
                # outage of the portal does not make every request wait for a fetch
                self._fetched_at = self._clock() - REFRESH_SECONDS + OUTAGE_RETRY_SECONDS
                return
            keys, published = {}, {}
            for jwk in document["keys"]:
                if isinstance(jwk, dict) and jwk.get("kid") and jwk.get("alg") in ALGORITHMS:
                    kid = str(jwk["kid"])
                    if self._published.get(kid) == jwk:  # the same key: its tokens remembered
                        keys[kid], published[kid] = self._keys[kid], jwk
                        continue
                    try:
                        keys[kid], published[kid] = jwt.PyJWK(jwk), jwk
                    except jwt.PyJWTError:
                        log.warning("identity_key_unusable", kid=kid[:64])
            self._keys, self._published = keys, published
            self._fetched_at = self._clock()

    async def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The public key `kid`, fetching the keys again when unknown or old."""
        if kid in self._keys and self._clock() - self._fetched_at < REFRESH_SECONDS:
            return self._keys[kid]  # the common case: no lock, no await
        await self._refresh(REFRESH_SECONDS)
        if kid not in self._keys:
            await self._refresh(RETRY_SECONDS)
        return self._keys.get(kid)

    async def verify(self, token: str) -> Identity:
        """Who `token` proves calls; InvalidToken saying why not."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token too long")
        accepted = self._accepted.pop(token, None)  # put back last while it holds
        if accepted is not None:
            key = await self.key_for(accepted.kid)
            if key is accepted.key and self._wall() < accepted.expires:
                self._remember(token, accepted)
                return accepted.identity
        identity, accepted = await self._check(token)  # new, forgotten, expired or key changed
        self._remember(token, accepted)
        return identity

    def _remember(self, token: str, accepted: _Accepted) -> None:
        self._accepted[token] = accepted
        if len(self._accepted) > REMEMBERED_TOKENS:
            del self._accepted[next(iter(self._accepted))]

    async def _check(self, token: str) -> tuple[Identity, _Accepted]:
        header = _header(token)
        kid, alg = header.get("kid"), header.get("alg")
        if alg not in ALGORITHMS:
            raise InvalidToken("signature algorithm not accepted")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("token names no key")
        key = await self.key_for(kid)
        if key is None or key.algorithm_name != alg:
            raise InvalidToken("token signed with an unknown key")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"token not for {self.audience}") from None
        except jwt.PyJWTError:
            raise InvalidToken("token signature or claims invalid") from None
        try:
            identity = identity_from_claims(claims)
        except InvalidClaims as error:
            raise InvalidToken(str(error)) from None
        # valid until `exp` is LEEWAY_SECONDS past, as PyJWT checked on the system clock; read
        # here on `wall` too, the clock remembered tokens expire by
        expires = float(claims["exp"]) + LEEWAY_SECONDS
        if self._wall() >= expires:
            raise InvalidToken("token expired")
        return identity, _Accepted(identity, kid, key, expires)


@dataclass(frozen=True)
class _Accepted:
    """A token a verifier accepted: who it proves, the key that signed it, until when."""

    identity: Identity
    kid: str
    key: jwt.PyJWK
    expires: float  # epoch seconds


def required_identity_keys(settings: Settings, service: str) -> str:
    """Where `service` reads the keys that sign identity tokens (`IDENTITY_KEYS`: the portal's
    JWKS URL or a JWKS file). Without them it could believe no caller: it does not start (a log
    line saying why, `service_not_started`, then exit status 2), before it touches a server."""
    source = settings.identity_keys.strip()
    if not source:
        configure_logging(service, settings.log_format, settings.log_level)
        log.error(
            "service_not_started",
            reason="IDENTITY_KEYS is not set: it names the portal's public keys that sign "
            "identity tokens (its JWKS URL, `<portal>/.well-known/jwks.json`, or a JWKS file); "
            "without them no caller can be verified",
        )
        raise SystemExit(2)
    return source


bearer = HTTPBearer(
    auto_error=False,
    description="a token the portal signed for this service (`Authorization: Bearer <JWT>`)",
)
UNAUTHORISED = "no verified identity: `Authorization: Bearer <token>` signed by the portal"


def requires_identity(verifier: Verifier) -> Callable[..., Awaitable[Identity]]:
    """The dependency giving a route its verified caller (401 otherwise, deny by default)."""

    async def identity(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Identity:
        if credentials is None:
            raise HTTPException(401, UNAUTHORISED, headers={"WWW-Authenticate": "Bearer"})
        try:
            return await verifier.verify(credentials.credentials)
        except InvalidToken as error:
            raise HTTPException(
                401,
                f"identity refused: {error}",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None

    return identity


def identity_headers(token: str) -> Mapping[str, str]:
    """The headers that carry `token` (for a client such as the portal)."""
    return {"Authorization": f"Bearer {token}"}


def main(argv: list[str] | None = None) -> None:
    """`python -m desk_platform.identity new-key <folder>` adds a signing key (publish it,
    then it signs: the newest signs); `jwks <folder or file>` prints the public keys."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m desk_platform.identity")
    parser.add_argument("command", choices=["new-key", "jwks"])
    parser.add_argument("place", type=Path)
    args = parser.parse_args(argv)
    if args.command == "new-key":
        path = write_signing_key(args.place, new_signing_key())
        print(path)
    else:
        json.dump(jwks(load_signing_keys(args.place)), sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
