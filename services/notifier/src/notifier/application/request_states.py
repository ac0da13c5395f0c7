"""The latest state workflow published of each request, kept by the notifier as ticket events
pass (`request_states`), for what reaches it without one: the SLA warnings and breaches.

The state is the one workflow publishes with every ticket event (`desk_contracts.state`): the
notifier keeps the newest version it has seen, in the consumer's transaction, and folds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from desk_contracts.state import RequestState


async def keep_states(conn: asyncpg.Connection, states: Sequence[RequestState]) -> None:
    """Keep each of `states` unless a newer version of its request is kept (one statement)."""
    await conn.executemany(
        """INSERT INTO request_states (ticket_id, version, state) VALUES ($1, $2, $3)
           ON CONFLICT (ticket_id) DO UPDATE SET version = EXCLUDED.version,
               state = EXCLUDED.state
           WHERE request_states.version < EXCLUDED.version""",
        [(state.ticket_id, state.version, state.model_dump_json()) for state in states],
    )
