"""The analysts' export: the whole ticket log and one summary per request, as Parquet files
and one DuckDB database holding both as tables.

    uv run python -m sla.entrypoints.export --out exports/ [--source kafka|store]
    uv run python -c "import duckdb; duckdb.connect('exports/desk.duckdb').sql(
        'SELECT desk, priority, count(*) FROM requests GROUP BY ALL').show()"

Reads `ticket-events` from Kafka (KAFKA_BOOTSTRAP_SERVERS, TOPIC_PREFIX; no consumer group,
nobody's offsets move) or workflow's store (`--source store`: DATABASE_URL, a read-only
snapshot) and writes, in `--out`:

- `events.parquet` and table `events`: every event in the log's order (`position`), its
  `type`, `ticket_id`, stream `version`, `occurred_at`, `actor` (who acted; the creator of a
  request), `desk` (the request's policy id, from its published state) and `data` (the
  payload as JSON text);
- `requests.parquet` and table `requests`: one row per request, from its published states:
  `key`, `desk`, `request_type`, `priority` (at creation) and `priority_now`, `status`,
  `organisation_id`, `created_at`, `closed_at`, `events`, and per clock (`response_`,
  `resolution_`) its `verdict` (kept, breached, open, not bound), business minutes `elapsed`
  and `target`, read with the policies in force at the request's end, or at the log's last
  event for a request still open (`sla.domain.whatif.verdicts`);
- `desk.duckdb`: both tables, queryable at once (`JOIN requests USING (ticket_id)`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import typer
from pydantic_core import from_json
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn

from desk_contracts.topics import TICKET_EVENTS
from sla.domain.whatif import Histories, Outcome, UnreadableHistory, terms_of, verdicts
from sla.entrypoints.log_sources import LogRecord, collector_paused, kafka_records, store_records
from sla.entrypoints.whatif import policies_in_force

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)
err = Console(stderr=True)

EVENTS_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("type", pa.string()),
        ("ticket_id", pa.string()),
        ("version", pa.int32()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("actor", pa.string()),
        ("desk", pa.string()),
        ("data", pa.string()),
    ]
)
_CLOCK_FIELDS = [
    (f"{clock}_{name}", kind)
    for clock in ("response", "resolution")
    for name, kind in (
        ("verdict", pa.string()),
        ("elapsed", pa.float64()),  # business minutes
        ("target", pa.float64()),
    )
]
REQUESTS_SCHEMA = pa.schema(
    [
        ("ticket_id", pa.string()),
        ("key", pa.string()),
        ("desk", pa.string()),
        ("request_type", pa.string()),
        ("priority", pa.string()),
        ("priority_now", pa.string()),
        ("status", pa.string()),
        ("organisation_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("closed_at", pa.timestamp("us", tz="UTC")),
        ("events", pa.int32()),
        *_CLOCK_FIELDS,
    ]
)


def _payload(text: str) -> dict[str, Any]:
    """An event's payload as JSON data (empty when it is not a JSON object)."""
    try:
        data = from_json(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _instant(parse: Callable[[str], datetime], text: Any) -> datetime | None:
    """An aware instant in UTC from ISO 8601 text (None when there is none, or it is naive)."""
    if not isinstance(text, str):
        return None
    try:
        instant = parse(text)
    except ValueError:
        return None
    return instant.astimezone(UTC) if instant.tzinfo is not None else None


@dataclass
class EventColumns:
    """The events table, column by column, as the log is read."""

    columns: dict[str, list[Any]] = field(
        default_factory=lambda: {name: [] for name in EVENTS_SCHEMA.names}
    )

    def add(self, records: list[LogRecord]) -> None:
        """One batch of the log, in order."""
        c = self.columns
        position = len(c["position"])
        parse = datetime.fromisoformat
        for record in records:
            data = _payload(record.data)
            occurred = data.get("occurred_at")
            actor = data.get("actor_id") or data.get("created_by")
            c["position"].append(position)
            c["type"].append(record.event_type)
            c["ticket_id"].append(record.ticket_id)
            c["version"].append(record.version)
            c["occurred_at"].append(_instant(parse, occurred))
            c["actor"].append(actor)
            c["desk"].append(record.state.get("policy_id") if record.state else None)
            c["data"].append(record.data)
            position += 1

    def table(self) -> pa.Table:
        """The events as an Arrow table."""
        return pa.table(self.columns, schema=EVENTS_SCHEMA)


def _clock(outcome: Outcome) -> list[Any]:
    def minutes(value: Any) -> float | None:
        """A duration in minutes (None stays None)."""
        return None if value is None else value.total_seconds() / 60

    return [outcome.verdict.value, minutes(outcome.elapsed), minutes(outcome.target)]


def request_table(histories: Histories) -> tuple[pa.Table, int]:
    """One row per request (see the module), and how many could not be read."""
    policies, calendars = policies_in_force()
    terms = terms_of(policies, calendars)
    until = histories.last_at or datetime.fromtimestamp(0, UTC)
    rows: list[list[Any]] = []
    unreadable = 0
    for history in histories.requests.values():
        try:
            v = verdicts(history, terms, until)
        except UnreadableHistory:
            unreadable += 1
            continue
        rows.append(
            [
                v.ticket_id,
                v.key,
                v.desk,
                v.request_type,
                v.priority,
                history.steps[-1][3],
                v.status,
                v.organisation_id,
                v.created_at,
                v.closed_at,
                len(history.steps),
                *_clock(v.response),
                *_clock(v.resolution),
            ]
        )
    columns = {name: [row[i] for row in rows] for i, name in enumerate(REQUESTS_SCHEMA.names)}
    return pa.table(columns, schema=REQUESTS_SCHEMA), unreadable


async def read_log(source: str, schema: str, bars: Progress) -> tuple[EventColumns, Histories]:
    """The whole log from `source`, into the events' columns and the requests' histories."""
    task = bars.add_task(f"reading the log ({source})", total=None)

    def progress(done: int, total: int) -> None:
        """The bar moved to `done` of `total` records."""
        bars.update(task, completed=done, total=total)

    batches: AsyncIterator[list[LogRecord]]
    if source == "kafka":
        topic = os.environ.get("TOPIC_PREFIX", "") + TICKET_EVENTS
        batches = kafka_records(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic, progress)
    else:
        batches = store_records(os.environ["DATABASE_URL"], schema, progress)
    events, histories = EventColumns(), Histories()
    async for records in batches:
        events.add(records)
        histories.add_all([r.state for r in records if r.state is not None])
    return events, histories


def write_duckdb(path: Path, tables: dict[str, pa.Table]) -> None:
    """A DuckDB database file holding `tables` (replaced if it exists)."""
    path.unlink(missing_ok=True)
    with duckdb.connect(str(path)) as con:
        for name, table in tables.items():
            con.register("arrow_table", table)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM arrow_table')
            con.unregister("arrow_table")


def export(source: str, schema: str, out: Path, quiet: bool = False) -> dict[str, int]:
    """Read the log and write the files (see the module); returns the rows written per table
    and the requests that could not be read."""
    out.mkdir(parents=True, exist_ok=True)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
    )
    with Progress(*columns, console=err, disable=quiet) as bars, collector_paused():
        events, histories = asyncio.run(read_log(source, schema, bars))
    events_table = events.table()
    requests_table, unreadable = request_table(histories)
    pq.write_table(events_table, out / "events.parquet")
    pq.write_table(requests_table, out / "requests.parquet")
    write_duckdb(out / "desk.duckdb", {"events": events_table, "requests": requests_table})
    return {
        "events": events_table.num_rows,
        "requests": requests_table.num_rows,
        "unreadable": unreadable,
    }


@app.command()
def main(
    out: Annotated[Path, typer.Option(help="folder of the Parquet files and desk.duckdb")],
    source: Annotated[str, typer.Option(help="kafka (ticket-events) or store (workflow's)")] = (
        "kafka"
    ),
    schema: Annotated[str, typer.Option(help="the workflow store's schema")] = "workflow",
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Export the log and the request summaries (see the module's help)."""
    if source not in ("kafka", "store"):
        raise typer.BadParameter("--source is kafka or store")
    started = time.perf_counter()
    counts = export(source, schema, out, quiet)
    err.print(
        f"exported {counts['events']:,} events and {counts['requests']:,} requests "
        f"({counts['unreadable']:,} unreadable) to {out} in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    app()
