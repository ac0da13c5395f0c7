"""The notifier's own readiness check: no message may stay unsent longer than a threshold.

Read from the deliveries table (whatever the sender is doing): a relay refusing us, a message
that cannot be built, a sender that stopped all show as a pending row getting old.
"""

from __future__ import annotations

import asyncpg

from desk_platform.metrics import Metrics
from desk_platform.readiness import Probe, Verdict, backlog_verdict


def pending_messages_probe(pool: asyncpg.Pool, threshold: float, metrics: Metrics) -> Probe:
    """How many messages are pending and since when the oldest, judged against `threshold`."""

    async def probe() -> Verdict:
        row = await pool.fetchrow(
            """SELECT count(*) AS pending, min(created_at) AS oldest, clock_timestamp() AS now
               FROM deliveries WHERE status = 'pending'"""
        )
        metrics.notifier_pending.set(row["pending"])
        oldest = row["oldest"]
        metrics.notifier_oldest.set((row["now"] - oldest).total_seconds() if oldest else 0)
        return backlog_verdict("messages", row["pending"], oldest, row["now"], threshold)

    return probe
