"""Test helpers: a fresh, migrated schema of a service on the real PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

import asyncpg

from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in


@asynccontextmanager
async def service_store(database_url: str, service: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new schema with the event store's and `service`'s migrations applied."""
    schema = f"t_{service}_{uuid.uuid4().hex[:8]}"
    pool = await open_store(
        database_url, schema, migrations_in(service, resources.files(service) / "migrations")
    )
    try:
        yield pool
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
