"""Fixtures: a fresh schema of the real PostgreSQL server per test, with the store migrated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from desk_eventstore.db import open_store


@pytest.fixture
async def schema(database_url: str) -> AsyncIterator[str]:
    name = "t_" + uuid.uuid4().hex[:12]
    yield name
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


@pytest.fixture
async def pool(database_url: str, schema: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_store(database_url, schema, max_size=12)
    yield pool
    await pool.close()
