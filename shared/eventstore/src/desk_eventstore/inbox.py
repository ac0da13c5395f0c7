"""Inbox: a consumer records each event id it applied in the same transaction as its work."""

from __future__ import annotations

import asyncpg


async def first_time(
    conn: asyncpg.Connection, consumer: str, event_id: str, stream_id: str | None = None
) -> bool:
    """Record `event_id` as applied by `consumer`; False when it was applied before.

    Call inside the transaction that does the work, so the record and the work commit together.
    A dead letter of that event by this consumer (registered during an outage, say) is resolved
    in the same statement: applied now or before, it is no longer a problem.
    """
    inserted = await conn.fetchval(
        """WITH applied AS (
               INSERT INTO inbox (consumer, event_id, stream_id) VALUES ($1, $2, $3)
               ON CONFLICT DO NOTHING RETURNING 1),
           resolved AS (
               UPDATE dead_letters SET resolved_at = now(), resolution = 'applied'
               WHERE origin = $1 AND event_id = $2 AND resolved_at IS NULL RETURNING 1)
           SELECT count(*) FROM applied""",
        consumer,
        event_id,
        stream_id,
    )
    return bool(inserted)
