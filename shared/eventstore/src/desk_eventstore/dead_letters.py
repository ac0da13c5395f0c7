"""The register of dead letters in a service's schema: which record a consumer dead-lettered,
or a relay set aside, and why; resolved when the event is applied after all or re-driven.

The dead-letter topics hold the records themselves; this register is what an operator reads
(`redrive list`), so a record dead-lettered during an outage and applied on a later attempt does
not stay listed as a problem.
"""

from __future__ import annotations

import asyncpg


async def record_dead_letter(
    conn: asyncpg.Connection, origin: str, event_id: str, stream_id: str | None, reason: str
) -> None:
    """Register (again) that `origin` dead-lettered `event_id`, with the latest reason."""
    await conn.execute(
        """INSERT INTO dead_letters (origin, event_id, stream_id, reason) VALUES ($1, $2, $3, $4)
           ON CONFLICT (origin, event_id) DO UPDATE
           SET reason = excluded.reason, times = dead_letters.times + 1,
               dead_lettered_at = now(), resolved_at = NULL, resolution = NULL""",
        origin,
        event_id,
        stream_id,
        reason,
    )


async def resolve(conn: asyncpg.Connection, origin: str, event_id: str, resolution: str) -> None:
    """Mark the dead letter of `event_id` resolved (applied after all, dropped by a re-drive)."""
    await conn.execute(
        """UPDATE dead_letters SET resolved_at = now(), resolution = $3
           WHERE origin = $1 AND event_id = $2 AND resolved_at IS NULL""",
        origin,
        event_id,
        resolution,
    )


async def set_aside_streams(conn: asyncpg.Connection, origin: str) -> dict[str, str]:
    """Streams with an unresolved dead letter of `origin`: stream id -> its first such event."""
    rows = await conn.fetch(
        """SELECT DISTINCT ON (stream_id) stream_id, event_id FROM dead_letters
           WHERE origin = $1 AND resolved_at IS NULL AND stream_id IS NOT NULL
           ORDER BY stream_id, dead_lettered_at""",
        origin,
    )
    return {row["stream_id"]: row["event_id"] for row in rows}


async def unresolved(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every unresolved dead letter, oldest first, with whether its stream is parked."""
    return list(
        await conn.fetch(
            """SELECT d.origin, d.event_id, d.stream_id, d.reason, d.times, d.dead_lettered_at,
                      EXISTS (SELECT 1 FROM parked p WHERE p.consumer = d.origin
                              AND p.event_id = d.event_id) AS parked
               FROM dead_letters d WHERE d.resolved_at IS NULL
               ORDER BY d.dead_lettered_at, d.origin, d.event_id"""
        )
    )


# Headers of a dead-letter record (on the origin topic's `.dlt` twin), beside the original ones.
ORIGIN_TOPIC = "dlt_origin_topic"
ORIGIN_PARTITION = "dlt_origin_partition"
ORIGIN_OFFSET = "dlt_origin_offset"
ORIGIN_GROUP = "dlt_origin_group"  # the consumer group that could not apply it
ORIGIN_RELAY = "dlt_origin_relay"  # the relay that could not publish it
ORIGINAL_BYTES = "dlt_original_bytes"  # set when the value was left out (it did not fit)
ERROR = "dlt_error"
