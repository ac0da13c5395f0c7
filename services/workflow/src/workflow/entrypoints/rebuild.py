"""Rebuild workflow's read model (`tickets`) from its event store, then swap it in.

    uv run python -m workflow.entrypoints.rebuild        # DATABASE_URL, POLICIES_DIR as the service

Every stream is folded again from position 0 into a new table, with progress on stderr, while
the service keeps running. The swap takes the store's append lock, so no command can commit
between the last event read and the new table going live: events appended during the rebuild
are caught up under that lock, then the new table replaces the old one in one transaction.
Each row gets its texts for search again too (the description, what people wrote since:
`workflow.application.tickets.search_texts`), as the commands' `save_view` writes them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from desk_contracts.base import Event
from desk_contracts.tickets import TicketCreated
from desk_eventstore.store import APPEND_LOCK_CLASS, read_all
from desk_policies.model import DeskPolicy
from desk_policies.requests import Ticket, evolve
from workflow.application.tickets import MAX_COMMENTS, save_view, search_texts


@dataclass
class Folded:
    """One request folded so far, with its texts for search (bounded as save_view keeps them)."""

    state: Ticket
    updated_at: datetime
    description: str = ""
    texts: list[str] = field(default_factory=list)
    written: int = 0  # characters of `texts`, with their separators

    def add(self, event: Event) -> None:
        """Keep what `event` holds for search, until `MAX_COMMENTS` characters are kept."""
        if isinstance(event, TicketCreated):
            self.description = event.description
        for text in search_texts([event]) if self.written < MAX_COMMENTS else ():
            self.texts.append(text)
            self.written += len(text) + 1


async def _fold(
    conn: asyncpg.Connection,
    policies: dict[str, DeskPolicy],
    tickets: dict[str, Folded],
    position: int,
    progress: Callable[[int], None],
) -> int:
    """Fold every event after `position` into `tickets`; returns the last position read."""
    while batch := await read_all(conn, position, 2000):
        for recorded in batch:
            event = recorded.to_event()
            folded = tickets.get(recorded.stream_id)
            if folded is None:
                if not isinstance(event, TicketCreated):
                    continue  # not a ticket stream
                policy = policies[event.policy_id]
                folded = Folded(Ticket.blank(policy, recorded.stream_id), recorded.recorded_at)
                tickets[recorded.stream_id] = folded
            folded.state = evolve(folded.state, event)
            folded.updated_at = recorded.recorded_at
            folded.add(event)
        position = batch[-1].global_position
        progress(position)
    return position


async def rebuild(
    url: str, schema: str, policies: dict[str, DeskPolicy], progress: Callable[[int], None]
) -> int:
    """Returns how many tickets the new read model holds."""
    conn = await asyncpg.connect(url, server_settings={"search_path": schema})
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS tickets_rebuild; "
            "CREATE TABLE tickets_rebuild (LIKE tickets INCLUDING ALL)"
        )
        tickets: dict[str, Folded] = {}
        position = await _fold(conn, policies, tickets, 0, progress)
        async with conn.transaction():
            await conn.execute(  # no command commits until the swap is done
                "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", APPEND_LOCK_CLASS
            )
            await _fold(conn, policies, tickets, position, progress)
            await conn.execute("ALTER TABLE tickets RENAME TO tickets_replaced")
            await conn.execute("ALTER TABLE tickets_rebuild RENAME TO tickets")
            for folded in tickets.values():
                await save_view(
                    conn,
                    folded.state,
                    folded.updated_at,
                    description=folded.description,
                    texts=folded.texts,
                )
            await conn.execute("DROP TABLE tickets_replaced")
        return len(tickets)
    finally:
        await conn.close()


def main() -> None:
    from desk_policies.loader import load_policies

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--schema", default="workflow")
    args = parser.parse_args()
    extra = [Path(os.environ["POLICIES_DIR"])] if os.environ.get("POLICIES_DIR") else []
    started = time.monotonic()

    def progress(position: int) -> None:
        rate = position / max(time.monotonic() - started, 1e-6)
        print(f"\rat position {position:,} ({rate:,.0f} events/s)", end="", file=sys.stderr)

    count = asyncio.run(
        rebuild(os.environ["DATABASE_URL"], args.schema, load_policies(*extra), progress)
    )
    print(
        f"\nread model rebuilt: {count:,} requests ({datetime.now(UTC):%H:%M:%S} UTC)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
