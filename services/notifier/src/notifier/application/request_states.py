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


async def latest_state(conn: asyncpg.Connection, ticket_id: str) -> RequestState | None:
    """The newest state kept of the request; None when none was kept yet."""
    state = await conn.fetchval("SELECT state FROM request_states WHERE ticket_id = $1", ticket_id)
    return None if state is None else RequestState.model_validate_json(state)
