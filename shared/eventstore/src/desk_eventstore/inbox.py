"""Inbox: a consumer records each event id it applied in the same transaction as its work."""

from __future__ import annotations

import asyncpg


async def first_time(
    conn: asyncpg.Connection, consumer: str, event_id: str, stream_id: str | None = None
) -> bool:
    """Record `event_id` as applied by `consumer`; False when it was applied before.

    Call inside the transaction that does the work, so the record and the work commit together.
    """
    inserted = await conn.fetchval(
        """INSERT INTO inbox (consumer, event_id, stream_id) VALUES ($1, $2, $3)
           ON CONFLICT DO NOTHING RETURNING 1""",
        consumer,
        event_id,
        stream_id,
    )
    return inserted is not None
