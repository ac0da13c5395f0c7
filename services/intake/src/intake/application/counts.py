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


# a message counted for its sender, then its domain while the sender is believed and within its
# limit, then its desk while the domain is within its own (in this order, always, so that
# concurrent counts cannot deadlock); with the sender's automatic answers of the day; the
# transaction's commit does not wait for its flush (the counters are soft: a crash forgets the
# last counts, never a request)
_COUNT_MESSAGE = """
WITH soft AS (SELECT set_config('synchronous_commit', 'off', true) AS setting),
message AS (
    INSERT INTO mail_sender_counts (sender, kind, window_start, count)
    SELECT $1, 'message', $4, 1 FROM soft
    ON CONFLICT (sender, kind, window_start) DO UPDATE SET count = mail_sender_counts.count + 1
    RETURNING count),
domain AS (
    INSERT INTO mail_sender_counts (sender, kind, window_start, count)
    SELECT $2, 'domain', $4, 1 FROM message WHERE $6 AND message.count <= $7
    ON CONFLICT (sender, kind, window_start) DO UPDATE SET count = mail_sender_counts.count + 1
    RETURNING count),
desk AS (
    INSERT INTO mail_sender_counts (sender, kind, window_start, count)
    SELECT $3, 'desk', $4, 1 FROM domain WHERE $3::text IS NOT NULL AND domain.count <= $8
    ON CONFLICT (sender, kind, window_start) DO UPDATE SET count = mail_sender_counts.count + 1
    RETURNING count)
SELECT (SELECT count FROM message) AS message, (SELECT count FROM domain) AS domain,
       (SELECT count FROM desk) AS desk,
       (SELECT count FROM mail_sender_counts
        WHERE sender = $1 AND kind = 'answer' AND window_start = $5) AS answers"""


async def count_message(
    conn: asyncpg.Connection,
    sender: str,
    desk: str | None,
    now: datetime,
    *,
    believed: bool,
    sender_limit: int,
    domain_limit: int,
) -> asyncpg.Record:
    """Count an inbound message of `sender` to `desk` in the hour of `now`, in one statement
    of the caller's transaction (see `_COUNT_MESSAGE`): a message its own limit drops counts for
    nothing wider, so one sender (or domain) over its limit cannot use up its domain's (or the
    desk's) hour. This hour's counts (`message`, `domain`, `desk`: NULL when not counted) and
    the sender's automatic answers today (`answers`, NULL for none)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    row: asyncpg.Record = await conn.fetchrow(
        _COUNT_MESSAGE,
        sender,
        sender.rpartition("@")[2],
        desk,
        window_of(now),
        day,
        believed,
        sender_limit,
        domain_limit,
    )
    return row


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
