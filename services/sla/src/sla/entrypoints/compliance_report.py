"""SLA compliance per month and priority, replayed from the log (nobody's offsets move).

    uv run python -m sla.entrypoints.compliance_report [--csv report.csv]

Reads `ticket-events` (which requests exist, their month and priority) and `sla-events`
(breaches) from the beginning; KAFKA_BOOTSTRAP_SERVERS and TOPIC_PREFIX as the services.
Only SLA-bound requests have clocks; the others count as kept.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from pathlib import Path

from desk_contracts.base import Event, event_from_data
from desk_contracts.topics import SLA_EVENTS, TICKET_EVENTS
from desk_platform.replay import Replayed, replay
from sla.domain.compliance import Row, compliance


async def collect(bootstrap: str, prefix: str) -> list[Row]:
    events: list[Event] = []
    topics = [prefix + TICKET_EVENTS, prefix + SLA_EVENTS]
    async for item in replay(bootstrap, topics):
        if isinstance(item, Replayed) and item.envelope.type in ("TicketCreated", "SlaBreached"):
            e = item.envelope
            events.append(event_from_data(e.type, e.schema_version, dict(e.data)))
    return compliance(events)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    rows = asyncio.run(
        collect(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ.get("TOPIC_PREFIX", ""))
    )
    header = ["month", "priority", "requests", "response_kept_%", "resolution_kept_%"]
    lines = [
        [
            r.month,
            r.priority,
            str(r.requests),
            f"{100 * r.response_kept:.1f}",
            f"{100 * r.resolution_kept:.1f}",
        ]
        for r in rows
    ]
    if args.csv:
        with args.csv.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows([header, *lines])
    else:
        writer = csv.writer(sys.stdout)
        writer.writerows([header, *lines])


if __name__ == "__main__":
    main()
