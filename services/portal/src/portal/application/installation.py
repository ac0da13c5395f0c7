"""A fresh installation's directory: imported once from a directory file (the shipped
demonstration one, or the deployment's own) when the portal's store holds nobody yet.

Imported people are invited: each proves their address before signing in (the "forgotten
password" page mails them their activation link again). On a developer's machine a demo
password may be given instead: every imported person is then active with it (refused in
production, where it would open every account)."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import structlog

from desk_contracts import directory as d
from desk_policies.directory import Directory, import_events
from portal.application import credentials
from portal.application.directory import is_empty, record

log = structlog.get_logger(__name__)
INSTALL_LOCK = 7_310_001  # one portal replica imports; the others find the directory filled


async def install(
    pool: asyncpg.Pool, directory: Directory, now: datetime, demo_password: str | None = None
) -> int:
    """Import `directory` when the store holds nobody yet; how many events that recorded."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", INSTALL_LOCK)
        if not await is_empty(conn):
            return 0
        events = import_events(directory, "import", now=now)
        if demo_password:
            events += [
                d.PersonActivated(occurred_at=now, by="import", email=p.email)
                for p in directory.people
            ]
        await record(conn, events)
        if demo_password:
            hashed = await credentials.hashed(demo_password)
            for person in directory.people:
                await credentials.store_hash(conn, person.email, hashed, now)
    log.info(
        "directory_imported",
        people=len(directory.people),
        organisations=len(directory.organisations),
        demo=bool(demo_password),
    )
    return len(events)
