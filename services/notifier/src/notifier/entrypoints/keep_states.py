"""Fill the notifier's kept request states from the whole of `ticket-events`: a one-off for an
installation whose notifier read its ticket events before it kept them (migration 0007), so
that the SLA warnings and breaches of those requests are told as soon as they come.

    uv run python -m notifier.entrypoints.keep_states

Reads the topic from the beginning without a consumer group (nobody's offsets move) and keeps
each record's published state unless a newer one of its request is kept: harmless while the
notifier runs, and when run again. SLA events set aside meanwhile are told by the running
notifier's release loop. Records without a valid state are counted and skipped. Uses
DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and TOPIC_PREFIX as the services do; the notifier's schema.
"""

from __future__ import annotations

import asyncio
import os
import sys
from importlib import resources

import asyncpg

from desk_contracts.state import MissingState, RequestState, state_of
from desk_contracts.topics import TICKET_EVENTS
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_platform.replay import Replayed, replay
from notifier.application.request_states import keep_states

BATCH = 500  # states kept per statement


async def fill(pool: asyncpg.Pool, bootstrap: str, topic: str) -> tuple[int, int]:
    """Keep the state of every record of `topic` (newest per request wins); returns how many
    records were read with a state, and how many were skipped (malformed, or without one)."""
    read = skipped = 0
    states: list[RequestState] = []

    async def flush() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await keep_states(conn, states)
        states.clear()

    async for item in replay(bootstrap, [topic]):
        if not isinstance(item, Replayed):
            skipped += 1
            continue
        try:
            states.append(state_of(item.envelope.request_state))
        except MissingState:
            skipped += 1
            continue
        read += 1
        if len(states) >= BATCH:
            await flush()
    if states:
        await flush()
    return read, skipped


async def _main() -> None:
    schema = "notifier"
    migrations = migrations_in(schema, resources.files("notifier") / "migrations")
    pool = await open_store(os.environ["DATABASE_URL"], schema, migrations)
    try:
        topic = os.environ.get("TOPIC_PREFIX", "") + TICKET_EVENTS
        read, skipped = await fill(pool, os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic)
    finally:
        await pool.close()
    print(f"kept the states of {read:,} records of {topic} ({skipped:,} skipped)", file=sys.stderr)


def main() -> None:
    """The command: fill the kept states from the topic's beginning."""
    asyncio.run(_main())


if __name__ == "__main__":
    main()
