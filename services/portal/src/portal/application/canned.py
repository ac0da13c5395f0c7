"""The canned replies the portal keeps (table `canned_replies`): a desk's texts by language,
listed for agents and written by the desk's leads (`portal.domain.canned`)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from portal.domain.canned import CannedReply


def _reply(row: asyncpg.Record) -> CannedReply:
    return CannedReply(**dict(row))


async def replies_of(
    conn: asyncpg.Connection, policy_id: str, language: str | None = None
) -> list[CannedReply]:
    """The desk's canned replies (in `language` only when given), by title."""
    rows = await conn.fetch(
        """SELECT * FROM canned_replies WHERE policy_id = $1 AND ($2::text IS NULL OR language = $2)
           ORDER BY language, lower(title)""",
        policy_id,
        language,
    )
    return [_reply(r) for r in rows]


async def reply(
    conn: asyncpg.Connection, policy_id: str, reply_id: uuid.UUID
) -> CannedReply | None:
    """One canned reply of the desk; None when the desk has none of that id."""
    row = await conn.fetchrow(
        "SELECT * FROM canned_replies WHERE policy_id = $1 AND reply_id = $2", policy_id, reply_id
    )
    return _reply(row) if row else None


async def save(
    conn: asyncpg.Connection,
    policy_id: str,
    language: str,
    title: str,
    body: str,
    by: str,
    now: datetime,
    reply_id: uuid.UUID | None = None,
) -> CannedReply | None:
    """Create (no `reply_id`) or change a canned reply of the desk; None when another reply of
    the desk in that language has the title, or `reply_id` is not the desk's."""
    try:
        row = await conn.fetchrow(
            """INSERT INTO canned_replies AS r
                   (reply_id, policy_id, language, title, body, changed_by, changed_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (reply_id) DO UPDATE SET language = $3, title = $4, body = $5,
                   changed_by = $6, changed_at = $7
               WHERE r.policy_id = $2
               RETURNING *""",
            reply_id or uuid.uuid4(), policy_id, language, title, body, by, now,
        )  # fmt: skip
    except asyncpg.UniqueViolationError:
        return None
    return _reply(row) if row else None


async def delete(conn: asyncpg.Connection, policy_id: str, reply_id: uuid.UUID) -> bool:
    """Remove a canned reply of the desk; whether there was one."""
    done = await conn.execute(
        "DELETE FROM canned_replies WHERE policy_id = $1 AND reply_id = $2", policy_id, reply_id
    )
    return bool(done.endswith(" 1"))
