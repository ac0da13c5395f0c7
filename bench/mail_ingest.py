"""Benchmark (not a test): SMTP ingest of the e-mail gateway on loopback, beside raw aiosmtpd.

    uv run python bench/mail_ingest.py [--messages 2000] [--connections 8] [--repeat 3]

Against the real PostgreSQL of `.state/infra.env` (DATABASE_URL), in one run:

1. baseline, raw aiosmtpd: the same server set-up as the gateway (`loop.create_server` with
   aiosmtpd's SMTP protocol, same size limit) with a handler that accepts every RCPT and answers
   250 to DATA doing nothing;
2. the gateway: `intake.adapters.smtp` + `MailGateway` on a fresh intake schema: every message is
   parsed, routed (a new request from a distinct sender of a known organisation to
   support@saas-desk.example, ~1.5 KB of French text, vouched for by our MX's
   Authentication-Results, the hour's domain and desk limits raised) and submitted, so that
   `TicketCreated` is committed in intake's event table (the outbox) before the server answers
   250.

Clients are separate processes (`--processes`, threads inside) using smtplib, one SMTP connection
per message (connect, EHLO, MAIL, RCPT, DATA, QUIT), `--connections` at a time in total. A rate
is messages / (first connection -> last 250), i.e. from connection to event in the outbox; the
run checks the outbox holds exactly one TicketCreated per message. Median and min-max of the
`--repeat` rounds are printed, then the gateway's share of the raw accept rate. The schema
created (`bench_mail_*`) is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import os
import platform
import secrets
import smtplib
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_platform.blobs import FolderBlobStore
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from intake.adapters.smtp import GatewayHandler, serve
from intake.application.mail_gateway import MailGateway
from intake.domain.mail import GatewayConfig

REPO = Path(__file__).resolve().parent.parent
MAX_BYTES = 26_214_400
MX = "mx.desk.example"  # our MX: its Authentication-Results are believed (MAIL_AUTHSERV_IDS)
BODY = (
    "Bonjour,\n\nDepuis la mise à jour de lundi, l'export mensuel du grand livre s'arrête à 50 %"
    " avec l'erreur « délai dépassé ». Nous avons essayé depuis deux postes différents et avec"
    " deux comptes, le résultat est le même. La clôture du mois dépend de cet export : pouvez-vous"
    " regarder rapidement ?\n\nÉtapes : Comptabilité > Exports > Grand livre > Mois précédent >"
    " Exporter (CSV). Le fichier produit fait 0 octet et le journal affiche « timeout after 30 s"
    " ».\n\n"
) * 2 + "Cordialement,\nUn utilisateur\nACME SA\n"


def message(run: str, n: int) -> tuple[str, bytes]:
    sender = f"user{n}.{run}@acme.example"
    raw = (
        f"Authentication-Results: {MX}; spf=pass; dmarc=pass header.from=acme.example\r\n"
        f"From: Utilisateur {n} <{sender}>\r\n"
        "To: Support <support@saas-desk.example>\r\n"
        f"Subject: Export du grand livre vide ({n})\r\n"
        f"Message-ID: <bench.{run}.{n}@acme.example>\r\n"
        "Date: Mon, 2 Mar 2026 09:00:00 +0100\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + BODY.replace("\n", "\r\n")
    )
    return sender, raw.encode()


def _client_batch(port: int, run: str, numbers: list[int], threads: int) -> int:
    """In a client process: send `numbers`' messages, `threads` connections at a time."""
    todo = list(numbers)
    lock = threading.Lock()
    failures = 0

    def worker() -> None:
        nonlocal failures
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop()
            sender, raw = message(run, n)
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    client.sendmail(sender, ["support@saas-desk.example"], raw)
            except smtplib.SMTPException:
                with lock:
                    failures += 1

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return failures


async def drive(
    port: int, run: str, count: int, processes: int, connections: int
) -> tuple[float, int]:
    """Send `count` messages from `processes` client processes; (seconds, failures)."""
    loop = asyncio.get_running_loop()
    chunks = [list(range(i, count, processes)) for i in range(processes)]
    threads = max(1, connections // processes)
    with concurrent.futures.ProcessPoolExecutor(processes) as executor:
        # warm the processes up (imports) before the clock starts
        await asyncio.gather(*(loop.run_in_executor(executor, time.sleep, 0.2) for _ in chunks))
        started = time.perf_counter()
        failures = await asyncio.gather(
            *(loop.run_in_executor(executor, _client_batch, port, run, c, threads) for c in chunks)
        )
        return time.perf_counter() - started, sum(failures)


class AcceptAll:
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def raw_round(args: argparse.Namespace, run: str) -> float:
    port = free_port()
    server = await serve(AcceptAll(), "127.0.0.1", port, max_bytes=MAX_BYTES, hostname="bench")  # type: ignore[arg-type]
    try:
        seconds, failures = await drive(port, run, args.messages, args.processes, args.connections)
    finally:
        server.close()
        await server.wait_closed()
    assert failures == 0, f"{failures} messages refused by the raw server"
    return float(args.messages / seconds)


async def gateway_round(args: argparse.Namespace, url: str, run: str, blobs: Path) -> float:
    schema = f"bench_mail_{run}"
    pool = await open_store(
        url, schema, migrations_in("intake", resources.files("intake") / "migrations"),
        max_size=args.pool,
    )  # fmt: skip
    policies = load_policies()
    config = GatewayConfig.of(
        policies, "support@desk.example", messages_per_hour=1000,
        domain_messages_per_hour=10**9, desk_messages_per_hour=10**9, authserv_ids=frozenset({MX}),
    )  # fmt: skip
    gateway = MailGateway(
        pool, policies, load_directory(), config, FolderBlobStore(blobs), lambda: datetime.now(UTC)
    )
    port = free_port()
    handler = GatewayHandler(gateway, config.addresses)
    server = await serve(handler, "127.0.0.1", port, max_bytes=MAX_BYTES, hostname="bench")
    try:
        seconds, failures = await drive(port, run, args.messages, args.processes, args.connections)
        async with pool.acquire() as conn:
            created = await conn.fetchval(
                "SELECT count(*) FROM events WHERE event_type = 'TicketCreated'"
            )
    finally:
        server.close()
        await server.wait_closed()
        async with pool.acquire() as conn:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
    assert failures == 0, f"{failures} messages refused by the gateway"
    assert created == args.messages, f"{created} requests for {args.messages} messages"
    return float(args.messages / seconds)


def summary(rates: list[float]) -> str:
    return f"{statistics.median(rates):8.0f} msg/s  (rounds {min(rates):.0f}-{max(rates):.0f})"


async def main_async(args: argparse.Namespace, url: str) -> None:
    raw: list[float] = []
    gated: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-mail-blobs-") as blobs:
        for _ in range(args.repeat):  # interleaved, so both see the same machine weather
            raw.append(await raw_round(args, secrets.token_hex(3)))
            gated.append(await gateway_round(args, url, secrets.token_hex(3), Path(blobs)))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"{args.messages} messages x {args.repeat} rounds, {args.connections} connections from "
        f"{args.processes} client processes, one SMTP connection per message, "
        f"{len(message('x', 0)[1])} bytes each"
    )
    print(f"raw aiosmtpd (do-nothing handler): {summary(raw)}")
    print(f"gateway, connection -> outbox:     {summary(gated)}")
    share = statistics.median(gated) / statistics.median(raw)
    print(f"gateway / raw accept rate:         {share:8.2f}")


def load_env() -> None:
    env_file = REPO / ".state" / "infra.env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, _, value = line[len("export ") :].partition("=")
                os.environ.setdefault(name.strip(), value.strip().strip("'\""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8, help="concurrent SMTP clients")
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--pool", type=int, default=10, help="database connections")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_env()
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("DATABASE_URL is needed: source .state/infra.env", file=sys.stderr)
        return 2
    logging.disable(logging.CRITICAL)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    asyncio.run(main_async(args, url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
