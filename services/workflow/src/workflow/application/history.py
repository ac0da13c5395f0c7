"""A request's past, read from its stream: the request as it was at an instant (`loaded_at`),
and the changes made on it (`changes_of`, for one request; `desk_changes`, for a desk's period).

The cut and the diff are `workflow.domain.audit`'s (pure); this module reads the streams. A desk's
period reads at most `MAX_DESK_REQUESTS` requests changed in it (the earliest changed first) and
gives at most `max_rows` changes (the earliest first); `more` says when something was left out,
so that a reader narrows the period rather than trusts a partial answer as whole. Only the
requests created before the period ends and changed since it began (the read model's
`created_at` and `updated_at`, indexed) have their events read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from desk_eventstore.store import read_stream
from desk_policies.model import DeskPolicy
from workflow.application.tickets import Loaded
from workflow.domain.audit import Change, changes, count_until, fold_until, within

MAX_DESK_REQUESTS = 500  # requests one desk period reads


def loaded_at(loaded: Loaded, as_of: datetime) -> Loaded | None:
    """The request `loaded` as it was at `as_of`: its state folded from the events it had then
    and their history (see `workflow.domain.audit`); None when it did not exist yet."""
    events = [recorded.to_event() for recorded in loaded.history]
    n = count_until((e.occurred_at for e in events), as_of)
    if n == 0:
        return None
    state = fold_until(loaded.state.policy, loaded.state.ticket_id, events[:n])
    return Loaded(state, loaded.history[:n])


def changes_of(loaded: Loaded) -> list[Change]:
    """Every field change made on the request `loaded`, oldest first."""
    events = [recorded.to_event() for recorded in loaded.history]
    return changes(loaded.state.policy, loaded.state.ticket_id, events)


@dataclass(frozen=True)
class DeskChanges:
    """The changes of a desk's period, oldest first; `more` when some were left out."""

    changes: list[Change]
    more: bool


async def desk_changes(
    conn: asyncpg.Connection,
    policies: Mapping[str, DeskPolicy],
    policy_id: str,
    start: datetime,
    end: datetime,
    max_rows: int,
) -> DeskChanges:
    """The field changes made on the requests of desk `policy_id` from `start` (included) to
    `end` (excluded), at most `max_rows` (see module)."""
    policy = policies[policy_id]
    ids = await conn.fetch(
        """SELECT e.stream_id, min((e.payload->>'occurred_at')::timestamptz) AS first
           FROM tickets AS t JOIN events AS e ON e.stream_id = t.ticket_id
           WHERE t.policy_id = $1 AND t.created_at < $3 AND t.updated_at >= $2
             AND (e.payload->>'occurred_at')::timestamptz >= $2
             AND (e.payload->>'occurred_at')::timestamptz < $3
           GROUP BY e.stream_id ORDER BY first, e.stream_id LIMIT $4""",
        policy_id, start, end, MAX_DESK_REQUESTS + 1,
    )  # fmt: skip
    more = len(ids) > MAX_DESK_REQUESTS
    found: list[Change] = []
    for row in ids[:MAX_DESK_REQUESTS]:
        stream = await read_stream(conn, row["stream_id"])
        events = [recorded.to_event() for recorded in stream]
        found += within(changes(policy, row["stream_id"], events), start, end)
    found.sort(key=lambda c: (c.occurred_at, c.key, c.version))
    return DeskChanges(found[:max_rows], more or len(found) > max_rows)
