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


async def first_times(
    conn: asyncpg.Connection, consumer: str, events: list[tuple[str, str | None]]
) -> set[str]:
    """Record a run of (event id, stream id) as applied by `consumer` in one statement; the ids
    not applied before (an id twice in the run counts once). Inside the run's transaction,
    followed by `forget` for those that were not applied after all and `resolve` for the rest."""
    ids: dict[str, str | None] = {}
    for event_id, stream_id in events:
        ids.setdefault(event_id, stream_id)
    rows = await conn.fetch(
        """INSERT INTO inbox (consumer, event_id, stream_id)
           SELECT $1, event_id, stream_id FROM unnest($2::text[], $3::text[])
               AS run(event_id, stream_id)
           ON CONFLICT DO NOTHING RETURNING event_id""",
        consumer,
        list(ids),
        list(ids.values()),
    )
    return {str(row["event_id"]) for row in rows}


async def forget(conn: asyncpg.Connection, consumer: str, event_ids: list[str]) -> None:
    """Undo `first_times` for events of the run that were not applied (consumed again later)."""
    if event_ids:
        await conn.execute(
            "DELETE FROM inbox WHERE consumer = $1 AND event_id = ANY($2)", consumer, event_ids
        )


async def resolve(conn: asyncpg.Connection, consumer: str, event_ids: list[str]) -> None:
    """Resolve the dead letters of events applied now or before, as `first_time` does."""
    if event_ids:
        await conn.execute(
            """UPDATE dead_letters SET resolved_at = now(), resolution = 'applied'
               WHERE origin = $1 AND event_id = ANY($2) AND resolved_at IS NULL""",
            consumer,
            event_ids,
        )
