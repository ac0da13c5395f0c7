"""This hour's counters of what arrives at intake, one table for every channel.

`mail_sender_counts` holds one row per (key, kind, window): the mail gateway counts messages
per sender, mail domain and desk (kinds `message`, `domain`, `desk`) and `POST /requests`
counts requests per submitter, requester's mail domain and desk (kinds `request`,
`request_domain`, `request_desk`: `intake.domain.flood`). Windows are fixed hours; counters
older than two days are forgotten (`mail_gateway.forget_old_counts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import asyncpg

from intake.domain.flood import window_of


async def count_this_hour(
    conn: asyncpg.Connection, keys: Mapping[str, str], now: datetime
) -> dict[str, int]:
    """Count one more for each kind -> key in the hour of `now`; this hour's counts by kind
    (the new one included). Rows are upserted in the order of `keys`: callers keep one order
    of kinds, so concurrent counts of the same rows cannot deadlock."""
    counts = await add_this_hour(conn, {(kind, key): 1 for kind, key in keys.items()}, now)
    return {kind: counts[kind, key] for kind, key in keys.items()}


async def add_this_hour(
    conn: asyncpg.Connection, added: Mapping[tuple[str, str], int], now: datetime
) -> dict[tuple[str, str], int]:
    """Add `added[kind, key]` to each counter in the hour of `now`, in one statement; this
    hour's counts by (kind, key), the added included (upserted in the order of `added`)."""
    rows = await conn.fetch(
        """INSERT INTO mail_sender_counts (sender, kind, window_start, count)
           SELECT key, kind, $3, n FROM unnest($1::text[], $2::text[], $4::int[]) AS t(key, kind, n)
           ON CONFLICT (sender, kind, window_start)
           DO UPDATE SET count = mail_sender_counts.count + excluded.count
           RETURNING kind, sender, count""",
        [key for _, key in added],
        [kind for kind, _ in added],
        window_of(now),
        list(added.values()),
    )
    return {(row["kind"], row["sender"]): row["count"] for row in rows}


async def uncount_this_hour(
    conn: asyncpg.Connection, keys: Mapping[str, str], now: datetime
) -> None:
    """Take back what `count_this_hour` counted for `keys` in the hour of `now` (a refused
    attempt counts for none); the rows are locked by this transaction already."""
    await conn.execute(
        """UPDATE mail_sender_counts AS c SET count = c.count - 1
           FROM unnest($1::text[], $2::text[]) AS t(key, kind)
           WHERE c.sender = t.key AND c.kind = t.kind AND c.window_start = $3""",
        list(keys.values()),
        list(keys),
        window_of(now),
    )
