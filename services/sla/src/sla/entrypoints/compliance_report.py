"""SLA compliance per month and priority, replayed from the log (nobody's offsets move).

    uv run python -m sla.entrypoints.compliance_report [--csv report.csv] [--png report.png]

Reads `ticket-events` (which requests exist, their month and priority) and `sla-events`
(breaches) from the beginning; KAFKA_BOOTSTRAP_SERVERS and TOPIC_PREFIX as the services.
Only SLA-bound requests have clocks; the others count as kept. The table goes to stdout as CSV
unless `--csv` names a file; `--png` draws it (one line per priority, response and resolution).
"""

from __future__ import annotations

import asyncio
import csv
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from desk_contracts.base import Event, event_from_data
from desk_contracts.topics import SLA_EVENTS, TICKET_EVENTS
from desk_platform.replay import Replayed, replay
from sla.domain.compliance import Row, compliance
from sla.entrypoints.report_files import compliance_csv, compliance_lines, compliance_png

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


async def collect(bootstrap: str, prefix: str) -> list[Row]:
    """The compliance rows of the log's `TicketCreated` and `SlaBreached` events."""
    events: list[Event] = []
    topics = [prefix + TICKET_EVENTS, prefix + SLA_EVENTS]
    async for item in replay(bootstrap, topics):
        if isinstance(item, Replayed) and item.envelope.type in ("TicketCreated", "SlaBreached"):
            e = item.envelope
            events.append(event_from_data(e.type, e.schema_version, dict(e.data)))
    return compliance(events)


@app.command()
def main(
    csv_file: Annotated[
        Path | None, typer.Option("--csv", help="the table as CSV (default: stdout)")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="the chart, as PNG")] = None,
) -> None:
    """Print or write the compliance report (see the module's help)."""
    rows = asyncio.run(
        collect(os.environ["KAFKA_BOOTSTRAP_SERVERS"], os.environ.get("TOPIC_PREFIX", ""))
    )
    if csv_file:
        compliance_csv(rows, csv_file)
    else:
        csv.writer(sys.stdout).writerows(compliance_lines(rows))
    if png:
        compliance_png(rows, png)


if __name__ == "__main__":
    app()
