"""Connecting to PostgreSQL: one schema per service, retry with backoff and a clear log line."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import structlog

from desk_eventstore.migrate import (
    MIGRATION_LOCK,
    Migration,
    apply_migrations,
    event_store_migrations,
)

log = structlog.get_logger(__name__)

UNREACHABLE = (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


async def wait_for_connection(
    url: str, *, attempts: int = 30, first_delay: float = 0.5, max_delay: float = 10.0
) -> asyncpg.Connection:
    """Connect, retrying with exponential backoff while the server is unreachable."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return await asyncpg.connect(url)
        except UNREACHABLE as error:
            if attempt == attempts:
                log.error("postgres_unreachable_giving_up", url=redacted(url), error=str(error))
                raise
            log.warning(
                "postgres_unreachable",
                url=redacted(url),
                error=str(error) or type(error).__name__,
                attempt=attempt,
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay)
    raise AssertionError("unreachable")


async def open_store(
    url: str,
    schema: str,
    extra_migrations: list[Migration] | None = None,
    *,
    min_size: int = 1,
    max_size: int = 10,
    attempts: int = 30,
) -> asyncpg.Pool:
    """Create `schema` if needed, apply the event store's and the service's migrations there,
    and return a pool whose connections work in that schema."""
    conn = await wait_for_connection(url, attempts=attempts)
    try:
        # under the migration lock: replicas starting together would race on CREATE SCHEMA
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            migrations = event_store_migrations() + (extra_migrations or [])
            applied = await apply_migrations(conn, migrations)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        if applied:
            log.info("migrations_applied", schema=schema, migrations=applied)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        server_settings=session_settings(schema),
        reset=keep_session,
    )
    assert pool is not None
    return pool


async def keep_session(conn: asyncpg.Connection) -> None:
    """What a connection going back to the pool needs beyond asyncpg's own clean-up (an open
    transaction rolled back, listeners removed): nothing. Our pooled sessions change no setting
    (`SET LOCAL` only), open no cursor outside a transaction and release the advisory locks they
    take; the default reset (`UNLISTEN *`, `RESET ALL`, `pg_advisory_unlock_all()`...) costs a
    round trip on every release."""


# The server probes an idle client's socket after 5 s, every 5 s, 3 times: a replica whose host
# vanished without closing (network cut, machine lost) loses its session, and with it the
# advisory locks it held (relay leadership, notifier leases), in about 20 s instead of the
# operating system's default of two hours.
KEEPALIVE = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "5",
             "tcp_keepalives_count": "3"}  # fmt: skip


def session_settings(schema: str) -> dict[str, str]:
    """Server settings of every connection of a store: its schema, and short keepalives."""
    return {"search_path": schema, **KEEPALIVE}
