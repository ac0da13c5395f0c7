"""Benchmark (not a test): the notifier's sender alone, from recorded rows to the project's SMTP
sink, in messages per second and CPU seconds per message of the sending process.

    uv run python bench/notify_send.py [--messages 2000] [--trickle 200] [--repeat 3] [--lanes 1,4]

The sink is `notifier.adapters.smtp_sink` (it writes each message to an .eml file) in its own
process on loopback; the rows are in a fresh schema of the PostgreSQL server of
`.state/infra.env`. Two cases for each number of relay connections in `--lanes`, each
`--repeat` times (median, and the rounds' range):

1. backlog: `--messages` pending rows, sent by `Sender.send_pending` batches of 50 a connection
   (the deliver loop's default) called back to back, as the loop does while it finds some;
2. trickle: `--trickle` rows, each recorded alone and then sent by its own `send_pending` call
   (the quiet desk: one message per tick), timing only the sending.

Reported per case: messages/s, CPU ms per message of this process (`time.process_time`), and
the SMTP connections opened (counted in this process) per message. The same-run baseline:
aiosmtplib alone handing the same sink `--messages` pre-built messages of the same size over
one connection (no database, no building).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import structlog
from aiosmtplib.email import flatten_message
from notify import free_port, infra_env  # bench/notify.py: the same servers, found alike

from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from notifier.application.delivery import Relay, Sender

try:
    from notifier.adapters.mime import build_message
except ImportError:  # before it had its own module: to measure an older commit the same way
    from notifier.application.delivery import build_message  # type: ignore[attr-defined]

REPO = Path(__file__).resolve().parent.parent
BODY = (
    "Bonjour Anne Martin,\n\n" + "Le correctif est déployé : pouvez-vous relancer l'export ?\n" * 20
)
HTML = (
    "<p>Bonjour Anne Martin,</p>\n" + "<p>Le correctif est déployé : relancez l'export.</p>\n" * 20
)


CONNECTS = 0
_connect = aiosmtplib.SMTP.connect


async def counting_connect(self: aiosmtplib.SMTP, *args: Any, **kwargs: Any) -> Any:
    global CONNECTS
    CONNECTS += 1
    return await _connect(self, *args, **kwargs)


aiosmtplib.SMTP.connect = counting_connect  # type: ignore[method-assign]


COLUMNS = ("recipient", "subject", "body", "language", "auto_submitted", "sender", "message_id")
ROW = (
    "anne@acme.example",
    "[PRB-1001] Nouveau commentaire : L'export mensuel échoue depuis lundi",
    BODY,
    "fr",
    "auto-generated",
    "support@saas-desk.example",
    "<00000000-0000-0000-0000-000000000000.0123456789abcdef01234567@desk.example>",
)


async def record(pool: asyncpg.Pool, count: int) -> None:
    rows = []
    for _ in range(count):
        ticket = str(uuid.uuid4())
        message_id = f"<{ticket}.{uuid.uuid4().hex[:24]}@desk.example>"
        rows.append(
            (
                f"{uuid.uuid4()}/anne@acme.example",
                str(uuid.uuid4()),
                ticket,
                "<origin@acme.example>",
                ["<origin@acme.example>"],
                HTML,
                *ROW[:-1],
                message_id,
            )
        )
    await pool.executemany(
        f"""INSERT INTO deliveries (delivery_key, event_id, ticket_id, in_reply_to, reference_ids,
                                    html, {", ".join(COLUMNS)})
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        rows,
    )


async def backlog(pool: asyncpg.Pool, sender: Sender, count: int) -> tuple[float, float, int]:
    await pool.execute("TRUNCATE deliveries")
    await record(pool, count)
    later = datetime.now(UTC) + timedelta(seconds=1)
    connects, cpu, start = CONNECTS, time.process_time(), time.perf_counter()
    while await sender.send_pending(later):
        pass
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    sent = await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
    assert sent == count, (sent, count)
    return wall, cpu, CONNECTS - connects


async def trickle(pool: asyncpg.Pool, sender: Sender, count: int) -> tuple[float, float, int]:
    await pool.execute("TRUNCATE deliveries")
    wall = cpu = 0.0
    connects = CONNECTS
    for _ in range(count):
        await record(pool, 1)
        later = datetime.now(UTC) + timedelta(seconds=1)
        c, start = time.process_time(), time.perf_counter()
        assert await sender.send_pending(later) == 1
        wall, cpu = wall + time.perf_counter() - start, cpu + time.process_time() - c
    return wall, cpu, CONNECTS - connects


async def raw(port: int, count: int) -> tuple[float, float, int]:
    """The baseline: `count` messages like the rows', built beforehand, over one connection."""
    row: dict[str, Any] = dict(zip(COLUMNS, ROW, strict=True))
    row |= {"html": HTML, "in_reply_to": None, "reference_ids": []}
    content = flatten_message(build_message(row, "support@desk.example", datetime.now(UTC)))
    connects, cpu, start = CONNECTS, time.process_time(), time.perf_counter()
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        for _ in range(count):
            await smtp.sendmail("support@saas-desk.example", ["anne@acme.example"], content)
    return time.perf_counter() - start, time.process_time() - cpu, CONNECTS - connects


def report(label: str, count: int, rounds: list[tuple[float, float, int]]) -> None:
    rates = [count / wall for wall, _, _ in rounds]
    cpu = statistics.median(c / count * 1000 for _, c, _ in rounds)
    conns = statistics.median(n / count for _, _, n in rounds)
    print(
        f"  {label:<34} {statistics.median(rates):>7,.0f} msg/s"
        f" (rounds {min(rates):,.0f}-{max(rates):,.0f}),"
        f" {cpu:.3f} ms CPU/msg, {conns:.3f} connections/msg",
        flush=True,
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--trickle", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lanes", default="1,4", help="relay connections of the sender")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    port = free_port()
    folder = tempfile.mkdtemp(prefix="notify-send-")
    sink = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "notifier.adapters.smtp_sink",
            "--port",
            str(port),
            "--folder",
            folder,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    env = infra_env()
    schema = f"bench_send_{uuid.uuid4().hex[:8]}"
    pool = await open_store(
        env["DATABASE_URL"],
        schema,
        migrations_in("notifier", resources.files("notifier") / "migrations"),
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().startswith("smtp sink")
        print(f"bench/notify_send.py, {os.cpu_count()} CPUs, sink {folder} on :{port}")
        relay = Relay("127.0.0.1", port, "support@desk.example")
        senders = {int(n): Sender(pool, relay, lanes=int(n)) for n in args.lanes.split(",")}
        for sender in senders.values():
            await backlog(pool, sender, 100)  # warm-up
        Case = tuple[str, int, Callable[[], Awaitable[tuple[float, float, int]]]]
        cases: list[Case] = [
            (f"baseline: raw aiosmtplib, {args.messages:,}", args.messages,
             lambda: raw(port, args.messages)),
        ]  # fmt: skip
        for lanes, sender in senders.items():
            cases += [
                (f"{lanes} conn., backlog of {args.messages:,}, batches of {50 * lanes}",
                 args.messages, lambda s=sender: backlog(pool, s, args.messages)),
                (f"{lanes} conn., trickle: {args.trickle} batches of 1", args.trickle,
                 lambda s=sender: trickle(pool, s, args.trickle)),
            ]  # fmt: skip
        for label, count, case in cases:
            report(label, count, [await case() for _ in range(args.repeat)])
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
        sink.terminate()
        sink.wait(timeout=10)
        subprocess.run(["rm", "-rf", folder], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
