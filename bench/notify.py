"""Benchmark (not a test): notifications rendered and handed to an SMTP sink, per second,
beside the raw aiosmtpd accept rate measured in the same run as the ratio's baseline.

    uv run python bench/notify.py [--messages 2000] [--repeat 3]

An aiosmtpd server with a do-nothing handler (accepts every message, keeps nothing) runs in its
own process on loopback; then, in this order, over one aiosmtplib connection each round:

1. raw: aiosmtplib sends `--messages` bare pre-built messages (a subject, one short text line):
   the baseline, what the sink and the client library can do at all;
2. raw with the notifications of case 3 built beforehand (same sizes: the wire's share);
3. rendered: for each message, the notifier's work from an event to the wire: the DOMAIN §7
   rules (`notifications_for`, directory look-ups), the template variables, the Jinja2 text and
   HTML rendering (fr and en, a mix of acknowledgement / comment / survey invitation with its
   signed link), the threaded MIME message (`build_message`), then the send;
4. through the store: the real path of the service against the PostgreSQL server of
   `.state/infra.env`: each event recorded in its own consumer transaction
   (the consumer's handler: the published request state read, threading look-up, rendering,
   the `deliveries` row),
   then `Sender.send_pending` batches (lease claim, send, mark each row sent) until all are out.
   Reported: recording rate, sending rate, and events-to-sent-mail overall.

Each case runs `--repeat` times; the median rate and the min-max of the rounds are printed,
then the ratios to the raw rate of the same run. Everything created is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from importlib import resources
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import structlog

from desk_contracts.base import Event
from desk_contracts.envelope import Envelope
from desk_contracts.state import RequestState
from desk_contracts.tickets import Channel, CommentAdded, TicketClosed, TicketCreated
from desk_eventstore.db import open_store
from desk_eventstore.migrate import migrations_in
from desk_policies.directory import load_directory
from desk_policies.loader import load_policies
from desk_policies.requests import Ticket, evolve, published
from notifier.adapters.kafka import on_ticket_event
from notifier.adapters.mime import build_message
from notifier.adapters.templates import Templates
from notifier.application.delivery import Relay, Sender
from notifier.application.notify import Notifier
from notifier.domain.content import notification_context
from notifier.domain.rules import notifications_for

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SINK = """
import asyncio, sys
from aiosmtpd.controller import Controller
class Nothing:
    async def handle_DATA(self, server, session, envelope):
        return "250 OK"
c = Controller(Nothing(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
sys.stdin.read()
c.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def infra_env() -> dict[str, str]:
    env = dict(os.environ)
    path = REPO / ".state" / "infra.env"
    if "DATABASE_URL" not in env and path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.removeprefix("export ").partition("=")
            if sep:
                env.setdefault(name.strip(), value.strip().strip('"'))
    return env


# ---------------------------------------------------------------------------- work


NOTIFIER = Notifier(
    policies=load_policies(),
    directory=load_directory(),
    templates=Templates(),
    mail_domain="desk.example",
    portal_url="https://portal.desk.example",
    survey_secret="bench-secret",
)


def opening(i: int) -> TicketCreated:
    """The `TicketCreated` of request `i`."""
    return TicketCreated(
        ticket_id=str(uuid.UUID(int=i)),
        occurred_at=NOW,
        key=f"PRB-{1000 + i}",
        policy_id="saas-desk",
        request_type="problem_report",
        priority="high",
        subject="L'export mensuel échoue depuis lundi",
        description="Erreur 500",
        organisation_id="acme",
        requester_id="anne@acme.example" if i % 2 else "carla@globex.example",
        created_by="anne@acme.example",
        channel=Channel.EMAIL,
        language="fr",
        source_message_id=f"<origin-{i}@acme.example>",
    )


def event_for(i: int, created: TicketCreated) -> Event:
    base: dict[str, Any] = {"ticket_id": created.ticket_id, "occurred_at": NOW}
    agent = {"actor_id": "paul@desk.example", "actor_role": "agent"}
    kind = i % 3
    if kind == 0:
        return created
    if kind == 1:
        body = "Bonjour, le correctif est déployé : pouvez-vous relancer l'export ?\n" * 3
        return CommentAdded(**base, **agent, body=body, public=True)
    return TicketClosed(
        **base, **agent, from_status="answered", to_status="closed", resolution_code="fixed"
    )


def state_after(created: TicketCreated, event: Event) -> RequestState:
    """The request as workflow publishes it with `event` (after its creation)."""
    state = evolve(Ticket.blank(NOTIFIER.policies[created.policy_id], created.ticket_id), created)
    return published(state if event is created else evolve(state, event))


def bare(i: int) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "support@desk.example"
    message["To"] = "anne@acme.example"
    message["Subject"] = f"bench {i}"
    message.set_content("hello\n")
    return message


def rendered(i: int) -> list[Message]:
    """Event -> rules -> words -> MIME messages: the notifier's work before the wire."""
    created = opening(i)
    event = event_for(i, created)
    view = state_after(created, event)
    policy = NOTIFIER.policies[view.policy_id]
    messages = []
    directory = NOTIFIER.directory_now()
    for note in notifications_for(event, view, policy, directory):
        survey = NOTIFIER.survey_url(event, view, note)
        context = notification_context(note, event, view, policy, directory, survey)
        words = NOTIFIER.templates.render(note.template, note.language, context, view.key)
        row = dict(
            recipient=note.recipient,
            sender=policy.email_intake.support_address,
            subject=words.subject,
            body=words.text,
            html=words.html,
            message_id=f"<{view.ticket_id}.{i:024x}@desk.example>",
            in_reply_to=view.source_message_id,
            reference_ids=[view.source_message_id],
            auto_submitted="auto-generated",
            language=note.language,
        )
        messages.append(build_message(row, "support@desk.example", NOW))
    return messages


# ---------------------------------------------------------------------------- rounds


async def raw_round(port: int, count: int) -> float:
    messages = [bare(i) for i in range(count)]
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        start = time.perf_counter()
        for message in messages:
            await smtp.send_message(message)
        return time.perf_counter() - start


async def prebuilt_round(port: int, messages: list[Message]) -> float:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        start = time.perf_counter()
        for message in messages:
            await smtp.send_message(message)
        return time.perf_counter() - start


async def rendered_round(port: int, count: int) -> float:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port) as smtp:
        start = time.perf_counter()
        sent = 0
        i = 0
        while sent < count:
            for message in rendered(i):
                await smtp.send_message(message)
                sent += 1
            i += 1
        return time.perf_counter() - start


async def store_round(pool: asyncpg.Pool, port: int, count: int) -> tuple[float, float, int]:
    """Record `count` events (one consumer transaction each), then send all; returns the
    seconds of each phase and the number of mails."""
    await pool.execute("TRUNCATE deliveries")
    events: list[tuple[Envelope, Event]] = []
    offset = int(time.time() * 1000) % 10_000_000 * 1000
    for i in range(count):
        created = opening(offset + i // 3 * 3)  # creation, comment, close of the same request
        event = event_for(i, created)
        envelope = Envelope(
            id=str(uuid.uuid4()),
            type=event.event_type,
            source="/desk/bench",
            subject=created.ticket_id,
            time=NOW,
            data=event.model_dump(mode="json"),
            request_state=state_after(created, event).model_dump(mode="json"),
        )
        events.append((envelope, event))
    handle = on_ticket_event(NOTIFIER)
    start = time.perf_counter()
    for envelope, event in events:
        async with pool.acquire() as conn, conn.transaction():
            await handle(conn, envelope, event)
    recorded = time.perf_counter() - start
    sender = Sender(pool, Relay("127.0.0.1", port, "support@desk.example"))
    later = datetime.now(UTC) + timedelta(seconds=1)
    start = time.perf_counter()
    while await sender.send_pending(later, limit=200):
        pass
    sending = time.perf_counter() - start
    mails = await pool.fetchval("SELECT count(*) FROM deliveries WHERE status = 'sent'")
    return recorded, sending, int(mails)


# ---------------------------------------------------------------------------- main


def line(label: str, rates: list[float], unit: str, detail: str = "") -> float:
    median = statistics.median(rates)
    spread = f"rounds {min(rates):,.0f}-{max(rates):,.0f}" if len(rates) > 1 else "1 round"
    print(f"  {label:<60} {median:>8,.0f} {unit}/s   ({spread}{detail})", flush=True)
    return median


async def measure(repeat: int, round_: Callable[[], Awaitable[float]], count: int) -> list[float]:
    return [count / await round_() for _ in range(repeat)]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-store", action="store_true", help="skip the PostgreSQL case")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    print(
        f"bench/notify.py on {platform.node()} ({os.cpu_count()} CPUs),"
        f" python {sys.version.split()[0]}"
    )
    port = free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", SINK, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        n = args.messages
        print(f"SMTP sink: aiosmtpd, do-nothing handler, own process, 127.0.0.1:{port}")
        await raw_round(port, 200)  # warm-up: connections, imports, template cache
        await rendered_round(port, 200)
        raw = line(
            "raw aiosmtplib -> aiosmtpd (bare messages)",
            await measure(args.repeat, lambda: raw_round(port, n), n),
            "msg",
        )
        same = [m for i in range(n) for m in rendered(i)][:n]
        size = statistics.mean(len(m.as_bytes()) for m in same[:300])
        line(
            f"raw, the same notifications built beforehand (~{size / 1024:.1f} KiB)",
            await measure(args.repeat, lambda: prebuilt_round(port, same), n),
            "msg",
        )
        ours = line(
            "rendered notifications -> aiosmtpd",
            await measure(args.repeat, lambda: rendered_round(port, n), n),
            "msg",
        )
        print(f"  ratio rendered / raw: {ours / raw:.2f}")
        if not args.no_store:
            env = infra_env()
            schema = f"bench_notify_{uuid.uuid4().hex[:8]}"
            pool = await open_store(
                env["DATABASE_URL"],
                schema,
                migrations_in("notifier", resources.files("notifier") / "migrations"),
            )
            try:
                results = [await store_round(pool, port, n) for _ in range(args.repeat)]
                mails = results[0][2]
                rec = line(
                    "  recorded (events, one transaction each)", [n / r[0] for r in results], "evt"
                )
                snd = line(
                    "  sent from the store (claim, send, mark)",
                    [r[2] / r[1] for r in results],
                    "msg",
                    f"; {mails:,} mails from {n:,} events",
                )
                both = line(
                    "  events -> mail accepted by the sink, overall",
                    [r[2] / (r[0] + r[1]) for r in results],
                    "msg",
                )
                print(
                    f"  ratio sent-from-store / raw: {snd / raw:.2f};"
                    f" overall / raw: {both / raw:.2f} (recording {rec:,.0f} evt/s)"
                )
            finally:
                async with pool.acquire() as conn:
                    await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                await pool.close()
    finally:
        if sink.stdin:
            sink.stdin.close()
        sink.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
