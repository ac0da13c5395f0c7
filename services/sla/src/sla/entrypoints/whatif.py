"""What if: replay a period of the log under other SLA terms and compare the verdicts.

    uv run python -m sla.entrypoints.whatif \\
        --policy docs/whatif/erp-vendor-critical-30min-saturday.yaml \\
        --from 2026-01-01 --to 2026-07-01 [--desk erp-vendor] [--csv c.csv] [--png c.png]
    uv run python -m sla.entrypoints.whatif --target erp-vendor.critical.response=30 \\
        --hours erp-vendor.saturday=09:00-12:00 --source store

Reads every request's published states from Kafka (`ticket-events`; KAFKA_BOOTSTRAP_SERVERS and
TOPIC_PREFIX as the services; no consumer group, nobody's offsets move) or from workflow's store
(`--source store`: DATABASE_URL, a read-only snapshot of its events table), computes each
request's response and resolution verdicts under the policies in force (the shipped ones and
POLICIES_DIR's) and under the alternative (`sla.domain.whatif`), and prints compliance per
month and priority both ways, the requests whose verdict changes and the difference in
breaches. Nothing is written anywhere but the files asked for.

The alternative is a scenario file (`sla.domain.scenario`: changes to desks' `sla` terms and
new calendars) or a whole desk policy file (`--policy`, repeatable), whole calendar files
(`--calendar`), and overrides (`--target`, `--hours`), applied in that order.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from desk_contracts.topics import TICKET_EVENTS
from desk_policies.calendars import BusinessCalendar, load_calendar, shipped_calendars
from desk_policies.loader import load_policies, parse_policy
from desk_policies.model import DeskPolicy
from sla.domain.scenario import (
    Scenario,
    ScenarioError,
    apply_scenario,
    hours_override,
    is_scenario,
    merged,
    target_override,
)
from sla.domain.whatif import (
    Histories,
    History,
    Pairs,
    Period,
    Terms,
    Verdict,
    WhatIf,
    compare,
    read_both_ways,
    summarise,
    terms_of,
)
from sla.entrypoints.log_sources import collector_paused, gather, kafka_states, store_states
from sla.entrypoints.report_files import changes_csv, minutes, whatif_csv, whatif_png

app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)
err = Console(stderr=True)


def instant(text: str | None) -> datetime | None:
    """A day (`2026-03-01`) or an instant (ISO 8601); without an offset it is UTC."""
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date or an ISO 8601 instant") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def policies_in_force() -> tuple[dict[str, DeskPolicy], dict[str, BusinessCalendar]]:
    """The policies and calendars the services run with (shipped, and POLICIES_DIR's)."""
    calendars = shipped_calendars()
    extra = [Path(os.environ["POLICIES_DIR"])] if os.environ.get("POLICIES_DIR") else []
    return load_policies(*extra, known_calendars=set(calendars)), calendars


def alternative(
    policies: dict[str, DeskPolicy],
    calendars: dict[str, BusinessCalendar],
    policy_files: list[Path],
    calendar_files: list[Path],
    targets: list[str],
    hours: list[str],
) -> Scenario:
    """The terms under the files and overrides given (see the module)."""
    extra_calendars = dict(calendars)
    for path in calendar_files:
        calendar = load_calendar(path)
        extra_calendars[calendar.id] = calendar
    data: Any = {}
    replaced: dict[str, DeskPolicy] = {}
    titles = []
    for path in policy_files:
        parsed = yaml.safe_load(path.read_text(encoding="utf-8"))
        if is_scenario(parsed):
            data = merged(data, parsed)
            titles.append(str(parsed.get("title") or path.stem))
        else:
            policy = parse_policy(parsed, str(path), known_calendars=set(extra_calendars))
            replaced[policy.id] = policy
            titles.append(f"policy {path.name}")
    for text in targets:
        data = merged(data, target_override(text))
        titles.append(text)
    for text in hours:
        data = hours_override(text, data, {**policies, **replaced})
        titles.append(text)
    data = {k: v for k, v in data.items() if k != "title"}
    scenario = apply_scenario(data, policies, extra_calendars, replaced)
    title = "; ".join(titles) or "no change"
    return Scenario(title, scenario.policies, scenario.calendars, scenario.changed)


async def read_histories(
    source: str, period: Period, progress: Callable[[int, int], None], schema: str
) -> Histories:
    """Every request's history from `source` (`kafka` or `store`) up to the period's end."""
    batches: AsyncIterator[list[dict[str, Any]]]
    if source == "kafka":
        topic = os.environ.get("TOPIC_PREFIX", "") + TICKET_EVENTS
        batches = kafka_states(os.environ["KAFKA_BOOTSTRAP_SERVERS"], topic, progress)
    else:
        batches = store_states(os.environ["DATABASE_URL"], schema, progress)
    return await gather(batches, period)


def read_with_progress(
    source: str, period: Period, schema: str, quiet: bool = False
) -> tuple[Histories, float]:
    """`read_histories` with a progress bar on stderr (records, share, rate, time left); returns the
    histories and the seconds the read took."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} records/s"),
        TimeRemainingColumn(),
    )
    started = time.perf_counter()
    with Progress(*columns, console=err, disable=quiet, transient=False) as bars:
        task = bars.add_task(f"reading the log ({source})", total=None, rate="-")

        def progress(done: int, total: int) -> None:
            """The bar moved to `done` of `total` records, with the rate so far."""
            rate = done / max(time.perf_counter() - started, 1e-6)
            bars.update(task, completed=done, total=total, rate=f"{rate:,.0f}")

        histories = asyncio.run(read_histories(source, period, progress, schema))
    return histories, time.perf_counter() - started


def reading_instant(period: Period, histories: Histories) -> datetime:
    """When the clocks of requests still open are read: the period's end, or the log's last
    event when the log ends sooner (what came after it is not known)."""
    last = histories.log_ends_at or datetime.fromtimestamp(0, UTC)
    return last if period.end is None else min(period.end, last)


SHARED_WITH_WORKERS: dict[str, Any] = {}  # what forked workers inherit (never pickled)
FEW = 2_000  # requests below which one core compares them sooner than several


def _read_part(part: int) -> Pairs:
    """One worker's share of the requests (every `workers`-th from `part`), read both ways."""
    shared = SHARED_WITH_WORKERS
    share = shared["histories"][part :: shared["workers"]]
    return read_both_ways(share, *shared["arguments"])


def compare_on_cores(
    histories: list[History],
    now: Mapping[str, Terms],
    alternative: Mapping[str, Terms],
    until: datetime,
    period: Period,
    desks: Collection[str] | None,
    workers: int | None = None,
) -> WhatIf:
    """`compare`, the requests read on every core: forked workers inherit the histories, each
    reads every n-th request both ways (the clocks' calendar arithmetic is most of the work),
    and their verdicts are joined and summarised here. One core for few requests, or where
    processes cannot be forked."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(histories) < FEW or "fork" not in multiprocessing.get_all_start_methods():
        return compare(histories, now, alternative, until, period, desks)
    SHARED_WITH_WORKERS.update(
        histories=histories, workers=workers, arguments=(now, alternative, until, period, desks)
    )
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            parts = list(pool.map(_read_part, range(workers)))
    finally:
        SHARED_WITH_WORKERS.clear()
    joined = Pairs(
        [pair for part in parts for pair in part.pairs],
        [item for part in parts for item in part.unreadable],
    )
    return summarise(joined, until)


def _kept(share_now: float, share_alt: float) -> tuple[str, str, str]:
    difference = 100 * (share_alt - share_now)
    style = "green" if difference > 0 else "red" if difference < 0 else "dim"
    return (
        f"{100 * share_now:.1f}",
        f"{100 * share_alt:.1f}",
        f"[{style}]{difference:+.1f}[/{style}]",
    )


def show(report: WhatIf, title: str, console: Console, changes_shown: int) -> None:
    """The report on the terminal: compliance side by side, changed verdicts, breaches."""
    table = Table(title=f"SLA compliance, now vs what if: {title}", title_justify="left")
    for name in ("month", "priority", "requests"):
        table.add_column(name, justify="left" if name != "requests" else "right")
    for clock in ("response", "resolution"):
        for side in ("now %", "what if %", "Δ pts"):
            table.add_column(f"{clock} {side}", justify="right")
    for row in report.rows:
        table.add_row(
            row.month,
            row.priority,
            str(row.requests),
            *_kept(row.now.response_kept, row.alternative.response_kept),
            *_kept(row.now.resolution_kept, row.alternative.resolution_kept),
        )
    console.print(table)
    changed = Table(
        title=f"Requests whose verdict changes ({len(report.changes)} clocks; "
        f"{min(changes_shown, len(report.changes))} shown)",
        title_justify="left",
    )
    for name in ("key", "desk", "priority", "created", "clock", "now", "what if", "elapsed min"):
        changed.add_column(name)
    for change in report.changes[:changes_shown]:
        before, after = change.before, change.after
        style = "red" if after.verdict is Verdict.BREACHED else "green"
        changed.add_row(
            change.now.key,
            change.now.desk,
            change.now.priority,
            f"{change.now.created_at:%Y-%m-%d %H:%M}Z",
            change.clock.value,
            f"{before.verdict} ({minutes(before.target)} min)",
            f"[{style}]{after.verdict}[/{style}] ({minutes(after.target)} min)",
            f"{minutes(before.elapsed)} → {minutes(after.elapsed)}",
        )
    console.print(changed)
    breaches = Table(title="Breaches", title_justify="left")
    for name in ("clock", "now", "what if", "difference"):
        breaches.add_column(name, justify="right" if name != "clock" else "left")
    for clock in report.breaches_now:
        breaches.add_row(
            clock.value,
            str(report.breaches_now[clock]),
            str(report.breaches_alternative[clock]),
            f"{report.breach_difference(clock):+d}",
        )
    console.print(breaches)
    until = f"{report.read_until:%Y-%m-%d %H:%M}Z" if report.read_until else "-"
    console.print(
        f"{report.requests:,} requests compared; open clocks read at {until}; "
        f"{len(report.unreadable)} unreadable"
    )


@app.command()
def main(
    policy: Annotated[
        list[Path] | None,
        typer.Option(help="a scenario file, or a whole desk policy file (repeatable)"),
    ] = None,
    calendar: Annotated[
        list[Path] | None, typer.Option(help="a whole calendar file (repeatable)")
    ] = None,
    target: Annotated[
        list[str] | None,
        typer.Option(help="DESK.PRIORITY.response|resolution=MINUTES (repeatable)"),
    ] = None,
    hours: Annotated[
        list[str] | None,
        typer.Option(help="DESK.WEEKDAY=HH:MM-HH:MM[,...] business hours (repeatable)"),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="requests created from (day or instant, UTC)")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="... until before (the log is read up to it)")
    ] = None,
    source: Annotated[str, typer.Option(help="kafka (ticket-events) or store (workflow's)")] = (
        "kafka"
    ),
    schema: Annotated[str, typer.Option(help="the workflow store's schema")] = "workflow",
    desk: Annotated[list[str] | None, typer.Option(help="only these desks (repeatable)")] = None,
    csv: Annotated[Path | None, typer.Option(help="compliance side by side, as CSV")] = None,
    changes: Annotated[
        Path | None, typer.Option(help="the requests whose verdict changes, as CSV")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="the compliance chart, as PNG")] = None,
    show_changes: Annotated[int, typer.Option(help="changed verdicts shown")] = 20,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Replay a period of the log under other SLA terms (see the module's help)."""
    if source not in ("kafka", "store"):
        raise typer.BadParameter("--source is kafka or store")
    try:
        period = Period(instant(start), instant(end))
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    policies, calendars = policies_in_force()
    unknown = sorted(set(desk or ()) - set(policies))
    if unknown:
        raise typer.BadParameter(f"no desk {', '.join(unknown)} ({', '.join(sorted(policies))})")
    try:
        scenario = alternative(
            policies, calendars, policy or [], calendar or [], target or [], hours or []
        )
    except (ScenarioError, ValueError, OSError, yaml.YAMLError) as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    histories, seconds = read_with_progress(source, period, schema, quiet)
    err.print(
        f"read {histories.records:,} records in {seconds:.2f} s "
        f"({histories.records / max(seconds, 1e-9):,.0f}/s), {len(histories.requests):,} "
        f"requests, {histories.duplicates:,} duplicates, {histories.unreadable:,} unreadable "
        f"states and {histories.on_test_clocks:,} of requests on test clocks skipped"
    )
    until = reading_instant(period, histories)
    with collector_paused():
        report = compare_on_cores(
            list(histories.requests.values()),
            terms_of(policies, calendars),
            terms_of(scenario.policies, scenario.calendars),
            until,
            period,
            set(desk) if desk else None,
        )
    show(report, scenario.title, Console(), show_changes)
    if csv:
        whatif_csv(report, csv)
    if changes:
        changes_csv(report, changes)
    if png:
        whatif_png(report, png, f"What if: {scenario.title}")


if __name__ == "__main__":
    app()
