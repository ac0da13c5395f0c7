"""Test helpers: identities signed as the portal signs them, for intake, workflow and sla.

One signing key for the whole test session, published once as a JWKS file (`JWKS_FILE`, what
`IDENTITY_KEYS` names for a service started as a process); `verifier(audience)` checks tokens
against it for an app built in the test's process. `bearer(...)` gives the header of a token
for one service; `expired`, `forged`, `unsigned` make the tokens a service must refuse.
Test tokens live for hours (the portal's for minutes), so a header made at import time still
works at the end of a long run.
"""

from __future__ import annotations

import atexit
import base64
import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt

from desk_contracts.identity import Identity, Scope, Via
from desk_platform.identity import Signer, Verifier, jwks, new_signing_key

KEY = new_signing_key("test-signing-key")
SIGNER = Signer([KEY])
LIFETIME = timedelta(hours=12)
WRITE: tuple[Scope, ...] = ("read", "write")
READ_ONLY: tuple[Scope, ...] = ("read",)

_FOLDER = Path(tempfile.mkdtemp(prefix="desk-identity-"))
atexit.register(shutil.rmtree, _FOLDER, ignore_errors=True)
JWKS_FILE = _FOLDER / "jwks.json"
JWKS_FILE.write_text(json.dumps(jwks([KEY])), encoding="utf-8")


def verifier(audience: str) -> Verifier:
    """A verifier of `audience` (a service's name) that believes the session's test key."""
    return Verifier(str(JWKS_FILE), audience)


def identity(
    subject: str,
    *,
    organisation: str | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
    scope: Iterable[Scope] = WRITE,
    via: Via = "password",
    name: str = "",
) -> Identity:
    """Who a token says calls: `roles` maps a desk to the roles held there (staff)."""
    return Identity(
        subject=subject,
        name=name or subject,
        organisation=organisation,
        roles={desk: tuple(held) for desk, held in (roles or {}).items()},
        scope=frozenset(scope),
        via=via,
    )


def token(
    subject: str,
    *,
    audience: str,
    organisation: str | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
    scope: Iterable[Scope] = WRITE,
    via: Via = "password",
    signer: Signer = SIGNER,
    now: datetime | None = None,
    lifetime: timedelta = LIFETIME,
) -> str:
    """A token for `audience` saying who calls, signed by `signer` (the session's test key)."""
    who = identity(subject, organisation=organisation, roles=roles, scope=scope, via=via)
    return signer.token(who, audience, now or datetime.now(UTC), lifetime)


def bearer(
    subject: str,
    *,
    audience: str,
    organisation: str | None = None,
    roles: Mapping[str, Iterable[str]] | None = None,
    scope: Iterable[Scope] = WRITE,
    via: Via = "password",
    signer: Signer = SIGNER,
) -> dict[str, str]:
    """The `Authorization` header of a token for `audience` (see `token`)."""
    signed = token(
        subject,
        audience=audience,
        organisation=organisation,
        roles=roles,
        scope=scope,
        via=via,
        signer=signer,
    )
    return {"Authorization": f"Bearer {signed}"}


def expired(subject: str, *, audience: str, **claims: Any) -> str:
    """A token that expired an hour ago (well beyond the verifiers' leeway)."""
    then = datetime.now(UTC) - timedelta(hours=2)
    return token(subject, audience=audience, now=then, lifetime=timedelta(hours=1), **claims)


def forged(subject: str, *, audience: str, **claims: Any) -> str:
    """A token naming the test key's id but signed by another key (anyone can make one)."""
    impostor = Signer([type(KEY)(KEY.kid, new_signing_key().private)])
    return token(subject, audience=audience, signer=impostor, **claims)


def unsigned(subject: str, *, audience: str, **claims: Any) -> str:
    """The claims of a good token under `alg: none`, without a signature."""
    payload = jwt.decode(
        token(subject, audience=audience, **claims), options={"verify_signature": False}
    )

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': KEY.kid})}.{part(payload)}."
