"""What proves who a person is, kept by the portal alone: passwords (Argon2), single-use
links, sessions, API tokens, and the failed sign-ins that lock an address for a while.

Every secret handed out (a link's, a session's, an API token's) is 32 random bytes; only its
SHA-256 digest is stored, so a copy of the database opens nothing. Passwords are hashed with
Argon2id (argon2-cffi's defaults, rehashed when those change); checking the password of an
unknown address still costs one hash, so timing does not tell which addresses exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import asyncpg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from desk_contracts.identity import Scope
from portal.domain.throttle import Failures, after_attempt, locked_for

Purpose = Literal["activate", "confirm", "reset", "sign-in"]
LINK_LIFETIME: dict[Purpose, timedelta] = {
    "activate": timedelta(days=7),
    "confirm": timedelta(days=2),
    "reset": timedelta(hours=1),
    "sign-in": timedelta(minutes=15),
}
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD = 10
MAX_PASSWORD = 200
TOKEN_PREFIX = "desk_"

_hasher = PasswordHasher()
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def password_problem(password: str) -> str | None:
    """Why `password` may not be used (None: it may): the catalogue key of the reason."""
    if len(password) < MIN_PASSWORD:
        return "password_too_short"
    if len(password) > MAX_PASSWORD:
        return "password_too_long"
    return None


async def hashed(password: str) -> str:
    """`password`'s Argon2id hash (in a thread: it takes tens of milliseconds on purpose)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def set_password(conn: asyncpg.Connection, email: str, password: str, now: datetime) -> None:
    await store_hash(conn, email, await hashed(password), now)


async def store_hash(conn: asyncpg.Connection, email: str, hashed: str, now: datetime) -> None:
    await conn.execute(
        "INSERT INTO credentials (email, password_hash, changed_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (email) DO UPDATE SET password_hash = $2, changed_at = $3",
        email, hashed, now,
    )  # fmt: skip


async def password_matches(conn: asyncpg.Connection, email: str, password: str) -> bool:
    """Is `password` the one of `email`? (One Argon2 check, whether or not there is one.)"""
    stored = await conn.fetchval("SELECT password_hash FROM credentials WHERE email = $1", email)

    def check() -> bool:
        try:
            return bool(_hasher.verify(stored or _DUMMY, password)) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


# --- single-use links ---------------------------------------------------------------------


async def issue_link(conn: asyncpg.Connection, email: str, purpose: Purpose, now: datetime) -> str:
    """A new link secret for `purpose`; earlier unused ones of the same purpose stop working."""
    await conn.execute(
        "UPDATE links SET used_at = $3 WHERE email = $1 AND purpose = $2 AND used_at IS NULL",
        email, purpose, now,
    )  # fmt: skip
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO links (digest, email, purpose, expires_at) VALUES ($1, $2, $3, $4)",
        digest(secret), email, purpose, now + LINK_LIFETIME[purpose],
    )  # fmt: skip
    return secret


async def use_link(
    conn: asyncpg.Connection, secret: str, purposes: tuple[Purpose, ...], now: datetime
) -> tuple[str, Purpose] | None:
    """Spend a link: the address and purpose it was for, or None when it is unknown, used,
    expired or for another purpose."""
    if not secret or len(secret) > 100:
        return None
    row = await conn.fetchrow(
        "UPDATE links SET used_at = $2 WHERE digest = $1 AND used_at IS NULL AND expires_at > $2"
        " AND purpose = ANY($3::text[]) RETURNING email, purpose",
        digest(secret), now, list(purposes),
    )  # fmt: skip
    return None if row is None else (row["email"], row["purpose"])


async def link_is_valid(
    conn: asyncpg.Connection, secret: str, purposes: tuple[Purpose, ...], now: datetime
) -> str | None:
    """The address a link is for, without spending it (to show its form), or None."""
    if not secret or len(secret) > 100:
        return None
    return await conn.fetchval(  # type: ignore[no-any-return]
        "SELECT email FROM links WHERE digest = $1 AND used_at IS NULL AND expires_at > $2"
        " AND purpose = ANY($3::text[])",
        digest(secret), now, list(purposes),
    )  # fmt: skip


# --- sessions -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """A signed-in browser: whose, its CSRF token, how they signed in."""

    email: str
    csrf: str
    via: str
    expires_at: datetime


async def open_session(
    conn: asyncpg.Connection, email: str, via: str, now: datetime
) -> tuple[str, Session]:
    """A new session for `email`: its secret (the cookie's value) and the session."""
    secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    expires = now + SESSION_LIFETIME
    await conn.execute(
        "INSERT INTO sessions (digest, email, csrf, via, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        digest(secret), email, csrf, via, now, expires,
    )  # fmt: skip
    return secret, Session(email, csrf, via, expires)


async def find_session(conn: asyncpg.Connection, secret: str, now: datetime) -> Session | None:
    if not secret or len(secret) > 100:
        return None
    row = await conn.fetchrow(
        "SELECT email, csrf, via, expires_at FROM sessions WHERE digest = $1 AND expires_at > $2",
        digest(secret), now,
    )  # fmt: skip
    return (
        None if row is None else Session(row["email"], row["csrf"], row["via"], row["expires_at"])
    )


async def close_session(conn: asyncpg.Connection, secret: str) -> None:
    await conn.execute("DELETE FROM sessions WHERE digest = $1", digest(secret))


async def close_sessions_of(conn: asyncpg.Connection, email: str) -> None:
    """Sign `email` out everywhere (a new password, a deactivation)."""
    await conn.execute("DELETE FROM sessions WHERE email = $1", email)


# --- throttling ---------------------------------------------------------------------------


async def attempt(conn: asyncpg.Connection, keys: Mapping[str, str], now: datetime) -> bool:
    """Count one attempt on each key (key -> its kind, `desk_portal.domain.throttle`); False,
    counting nothing, when one of them is locked. The keys' rows are locked meanwhile, so
    attempts made at once are counted one after the other."""
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO sign_in_failures (key, failures, first_at) SELECT k, 0, $2"
            " FROM unnest($1::text[]) AS k ON CONFLICT (key) DO NOTHING",
            sorted(keys), now,
        )  # fmt: skip
        rows = await conn.fetch(
            "SELECT * FROM sign_in_failures WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE",
            sorted(keys),
        )
        states = {r["key"]: Failures(r["failures"], r["first_at"], r["locked_until"]) for r in rows}
        if any(locked_for(state, now) is not None for state in states.values()):
            return False
        for key, kind in keys.items():
            new = after_attempt(states.get(key), kind, now)
            await conn.execute(
                "UPDATE sign_in_failures SET failures = $2, first_at = $3, locked_until = $4"
                " WHERE key = $1",
                key, new.failures, new.first_at, new.locked_until,
            )  # fmt: skip
    return True


async def clear_failures(conn: asyncpg.Connection, key: str) -> None:
    await conn.execute("DELETE FROM sign_in_failures WHERE key = $1", key)


async def uncount(conn: asyncpg.Connection, key: str) -> None:
    """Take back one attempt of `key` (a success: it was not a failure after all)."""
    await conn.execute(
        "UPDATE sign_in_failures SET failures = greatest(failures - 1, 0) WHERE key = $1", key
    )


# --- API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiToken:
    """A person's API token as listed (never its secret, which is shown once)."""

    token_id: uuid.UUID
    label: str
    scope: tuple[Scope, ...]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None


async def create_token(
    conn: asyncpg.Connection,
    email: str,
    label: str,
    scope: tuple[Scope, ...],
    lifetime: timedelta,
    now: datetime,
) -> tuple[str, uuid.UUID]:
    """A new API token for `email`: the secret to show once, and its id."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO api_tokens (token_id, email, label, digest, scope, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        token_id, email, label, digest(secret), " ".join(scope), now, now + lifetime,
    )  # fmt: skip
    return secret, token_id


async def token_owner(
    conn: asyncpg.Connection, secret: str, now: datetime
) -> tuple[str, tuple[Scope, ...]] | None:
    """Whose `secret` is, with its scope; None when unknown, expired or revoked."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    row = await conn.fetchrow(
        "UPDATE api_tokens SET last_used_at = $2 WHERE digest = $1 AND revoked_at IS NULL"
        " AND expires_at > $2 RETURNING email, scope",
        digest(secret), now,
    )  # fmt: skip
    if row is None:
        return None
    scope = tuple(s for s in ("read", "write") if s in row["scope"].split())
    return row["email"], scope  # type: ignore[return-value]


async def tokens_of(conn: asyncpg.Connection, email: str) -> list[ApiToken]:
    rows = await conn.fetch(
        "SELECT * FROM api_tokens WHERE email = $1 ORDER BY created_at DESC", email
    )
    return [
        ApiToken(
            r["token_id"],
            r["label"],
            tuple(r["scope"].split()),
            r["created_at"],
            r["expires_at"],
            r["revoked_at"],
            r["last_used_at"],
        )
        for r in rows
    ]


async def revoke_token(
    conn: asyncpg.Connection, email: str, token_id: uuid.UUID, now: datetime
) -> bool:
    """Revoke one of `email`'s tokens; False when they have no such token."""
    done = await conn.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $3)"
        " WHERE email = $1 AND token_id = $2",
        email, token_id, now,
    )  # fmt: skip
    return str(done).endswith(" 1")
