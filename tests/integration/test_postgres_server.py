"""The PostgreSQL server the tests run against (deploy/local/infra.sh or DATABASE_URL) is usable."""

from __future__ import annotations

import asyncpg
import pytest

pytestmark = pytest.mark.integration


async def test_postgres_answers_and_is_version_15_or_newer(database_url: str) -> None:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        version_num = int(await conn.fetchval("SHOW server_version_num"))
        assert version_num >= 150000, f"PostgreSQL 15+ needed, server is {version_num}"
        # jsonb and a transaction round-trip: what the event store relies on
        async with conn.transaction():
            value = await conn.fetchval("SELECT '{\"a\": 1}'::jsonb -> 'a'")
        assert value == "1"
    finally:
        await conn.close()
