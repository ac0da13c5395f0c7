"""The rebuild of workflow's read model on the real PostgreSQL server while commands go on: what
commits while it waits for the append lock, and what commits while it reads the log, is in the
new table, as the commands wrote it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from desk_servers import ticket_created as created
from service_support import service_store

import workflow.entrypoints.rebuild as rebuilding
from desk_contracts.tickets import TicketCreated
from desk_policies.loader import load_policies
from workflow.application.tickets import execute, load, open_stream
from workflow.domain.commands import Actor, AddComment
from workflow.entrypoints.rebuild import rebuild

pytestmark = pytest.mark.integration

POLICIES = load_policies()
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AGENT = Actor(id="paul@partner.example", role="agent")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


async def opened(conn: asyncpg.Connection, event: TicketCreated) -> None:
    """`event`'s request opened by workflow, in the caller's transaction."""
    await open_stream(conn, POLICIES, event, str(uuid.uuid4()), None)


async def commented(conn: asyncpg.Connection, ticket_id: str, body: str) -> None:
    """An internal comment on the request, as the command writes it, in the caller's
    transaction."""
    loaded = await load(conn, POLICIES, ticket_id)
    await execute(conn, loaded, AddComment(actor=AGENT, body=body, public=False), NOW)


async def rows(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    """The read model's rows, without the time of their last change (the commands write their
    `now`, the rebuild the time its last event was recorded)."""
    found = await conn.fetch("SELECT * FROM tickets ORDER BY key")
    return [{k: v for k, v in row.items() if k != "updated_at"} for row in found]


async def test_what_commits_while_the_rebuild_waits_for_the_append_lock_is_in_the_new_table(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first, second = created(), created()
    async with pool.acquire() as conn, conn.transaction():
        await opened(conn, first)
    async with pool.acquire() as writer, pool.acquire() as watcher:
        schema = await writer.fetchval("SELECT current_schema()")
        transaction = writer.transaction()
        await transaction.start()
        await opened(writer, second)  # holds the append lock until it commits
        await commented(writer, first.ticket_id, "Toner vide")
        expected = await rows(writer)
        task = asyncio.create_task(rebuild(database_url, schema, POLICIES, lambda _: None))
        for _ in range(200):  # until the rebuild has read the log and waits for the lock
            if await watcher.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the rebuild never waited for the append lock")
        assert not task.done()
        await transaction.commit()
        assert await task == 2
        assert await rows(watcher) == expected
    comments = {row["key"]: row["comments"] for row in expected}
    assert comments == {first.key: "Toner vide", second.key: ""}


async def test_what_commits_while_the_log_is_read_is_in_the_new_table(
    pool: asyncpg.Pool, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rebuilding, "BATCH", 1)  # the log read event by event
    events = [created() for _ in range(4)]
    async with pool.acquire() as conn:
        for event in events:
            async with conn.transaction():
                await opened(conn, event)
        schema = await conn.fetchval("SELECT current_schema()")
    meanwhile: list[asyncio.Task[None]] = []

    async def act() -> None:  # once the first request's row was made for the copy
        async with pool.acquire() as conn:
            async with conn.transaction():
                await commented(conn, events[0].ticket_id, "Toner vide")
            async with conn.transaction():
                await opened(conn, late := created())
            events.append(late)

    def progress(position: int) -> None:
        if not meanwhile:
            meanwhile.append(asyncio.get_running_loop().create_task(act()))

    count = await rebuild(database_url, schema, POLICIES, progress)
    await meanwhile[0]
    async with pool.acquire() as conn:
        after = await rows(conn)
        assert await rebuild(database_url, schema, POLICIES, lambda _: None) == 5
        assert await rows(conn) == after  # what a rebuild with nothing going on makes
    assert count in (4, 5)  # the last request may have been opened after the swap
    assert [row["key"] for row in after] == sorted(event.key for event in events)
    assert next(r["comments"] for r in after if r["key"] == events[0].key) == "Toner vide"
