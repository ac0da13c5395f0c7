"""Parking: once an event of a stream is dead-lettered, the consumer parks that stream's later
events behind it (dead-lettered too), so the stream is never applied out of order.

A re-drive (`desk_platform.redrive`) sends the parked events through again, in order, while the
stream stays parked: the consumer applies an event only when it is the first one parked, and
releases it in the same transaction; anything else that arrives meanwhile queues behind."""

from __future__ import annotations

import asyncpg


async def parked_behind(conn: asyncpg.Connection, consumer: str, stream_id: str) -> str | None:
    """The first parked event of the stream for this consumer, if the stream is parked."""
    row = await conn.fetchrow(
        """SELECT event_id FROM parked WHERE consumer = $1 AND stream_id = $2
           ORDER BY seq LIMIT 1""",
        consumer,
        stream_id,
    )
    return None if row is None else str(row["event_id"])


async def parked_among(conn: asyncpg.Connection, consumer: str, stream_ids: list[str]) -> set[str]:
    """Those of the streams that are parked for this consumer (a batch's one question)."""
    rows = await conn.fetch(
        "SELECT DISTINCT stream_id FROM parked WHERE consumer = $1 AND stream_id = ANY($2)",
        consumer,
        stream_ids,
    )
    return {str(row["stream_id"]) for row in rows}


async def park(
    conn: asyncpg.Connection, consumer: str, stream_id: str, event_id: str, reason: str
) -> None:
    await conn.execute(
        "INSERT INTO parked (consumer, stream_id, event_id, reason) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
        consumer,
        stream_id,
        event_id,
        reason,
    )


async def release(conn: asyncpg.Connection, consumer: str, stream_id: str, event_id: str) -> None:
    """The parked event was applied (or was found applied before): the next one may follow."""
    await conn.execute(
        "DELETE FROM parked WHERE consumer = $1 AND stream_id = $2 AND event_id = $3",
        consumer,
        stream_id,
        event_id,
    )


async def parked_events(conn: asyncpg.Connection, consumer: str, stream_id: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT event_id FROM parked WHERE consumer = $1 AND stream_id = $2 ORDER BY seq",
        consumer,
        stream_id,
    )
    return [str(row["event_id"]) for row in rows]


async def parked_streams(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            """SELECT consumer, stream_id, count(*) AS events, min(parked_at) AS since,
                  (array_agg(reason ORDER BY seq))[1] AS first_reason
           FROM parked GROUP BY consumer, stream_id ORDER BY since"""
        )
    )
