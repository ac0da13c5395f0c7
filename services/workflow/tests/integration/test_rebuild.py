"""Rebuilding workflow's read model while the store is being written, on the real PostgreSQL
server: the swap keeps every event, whether its transaction was still open when the swap began
or an open transaction elsewhere held it back from the readers of the global order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from desk_servers import envelope_of
from desk_servers import ticket_created as created
from service_support import service_store

from desk_contracts.tickets import TicketCreated
from desk_policies.loader import load_policies
from workflow.adapters.kafka import on_command
from workflow.entrypoints.rebuild import rebuild

pytestmark = pytest.mark.integration

POLICIES = load_policies()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "workflow") as pool:
        yield pool


async def open_ticket(conn: asyncpg.Connection, event: TicketCreated) -> None:
    handle = on_command(POLICIES, lambda: event.occurred_at)
    await handle(conn, envelope_of(event), event)


async def keys(pool: asyncpg.Pool) -> list[str]:
    return [r["key"] for r in await pool.fetch("SELECT key FROM tickets ORDER BY key")]


async def test_the_swap_keeps_an_event_an_open_transaction_elsewhere_holds_back(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first, second = created(), created()
    async with pool.acquire() as conn, conn.transaction():
        await open_ticket(conn, first)
    elsewhere = await asyncpg.connect(database_url)  # any transaction with an id, any schema
    try:
        async with elsewhere.transaction():
            await elsewhere.execute("SELECT pg_current_xact_id()")
            async with pool.acquire() as conn, conn.transaction():
                await open_ticket(conn, second)  # committed, behind the open transaction
            await pool.execute("DELETE FROM tickets")
            schema = await pool.fetchval("SELECT current_schema()")
            count = await rebuild(database_url, schema, POLICIES, lambda _: None)
    finally:
        await elsewhere.close()
    assert count == 2
    assert await keys(pool) == sorted([first.key, second.key])


async def test_the_swap_waits_for_a_command_that_appended_and_keeps_its_event(
    pool: asyncpg.Pool, database_url: str
) -> None:
    first, second = created(), created()
    async with pool.acquire() as conn, conn.transaction():
        await open_ticket(conn, first)
    schema = await pool.fetchval("SELECT current_schema()")
    async with pool.acquire() as command:
        transaction = command.transaction()
        await transaction.start()
        await open_ticket(command, second)  # appended and saved its view, not committed yet
        rebuilding = asyncio.create_task(rebuild(database_url, schema, POLICIES, lambda _: None))
        await asyncio.sleep(0.5)
        assert not rebuilding.done()  # the swap waits for the command's transaction
        await transaction.commit()
        count = await asyncio.wait_for(rebuilding, 10)
    assert count == 2
    assert await keys(pool) == sorted([first.key, second.key])
