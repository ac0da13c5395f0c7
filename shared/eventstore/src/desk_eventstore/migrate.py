"""Versioned SQL migrations, applied at start under an advisory lock so replicas don't race.

Each source is a folder of `NNNN_name.sql` files; applied ones are recorded in
`schema_migrations` with their source, so the event store's and a service's own migrations
live side by side in the service's schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg

MIGRATION_LOCK = 7_301_001
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class Migration:
    source: str
    version: int
    name: str
    sql: str


def migrations_in(source: str, folder: Traversable) -> list[Migration]:
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(source, int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def event_store_migrations() -> list[Migration]:
    return migrations_in("eventstore", resources.files("desk_eventstore") / "migrations")


async def apply_migrations(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply what is not applied yet, each in its own transaction; returns the names applied."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   source text NOT NULL, version integer NOT NULL, name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (source, version))"""
        )
        done = {
            (row["source"], row["version"])
            for row in await conn.fetch("SELECT source, version FROM schema_migrations")
        }
        for migration in migrations:
            if (migration.source, migration.version) in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (source, version, name) VALUES ($1, $2, $3)",
                    migration.source,
                    migration.version,
                    migration.name,
                )
            applied_now.append(f"{migration.source}/{migration.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    return applied_now
