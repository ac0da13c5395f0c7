"""What sending costs per message, over real SMTP on loopback (aiosmtpd) and the real PostgreSQL
server: one relay connection carries batch after batch (checked with NOOP after a pause,
replaced when the relay dropped it, closed with QUIT when idle or at shutdown, discarded after a
failure); a batch's first messages are marked one by one, the rest of a backlog in growing
groups, so that a crash re-sends at most the messages sent since the last mark and a refusal in
the middle of a batch leaves only its row pending; several connections share a batch by request
and send at once, each request's messages in their order."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from service_support import service_store
from structlog.testing import capture_logs
from system import free_port

from notifier.adapters.relay_connection import RelayConnection
from notifier.application import delivery
from notifier.application.delivery import Relay, Sender

pytestmark = pytest.mark.integration


class Relaying:
    """A real SMTP server's handler that counts connections, NOOPs and QUITs, keeps what it
    accepted, and refuses one recipient when told to."""

    def __init__(self) -> None:
        self.received: list[EmailMessage] = []
        self.connections = 0
        self.noops = 0
        self.quits = 0
        self.transports: list[asyncio.Transport] = []
        self.noop_reply = "250 OK"
        self.refuse_recipient: tuple[str, str] | None = None  # (address, reply)
        self.refuse_sender_with: str | None = None
        self.data_delay = 0.0  # seconds each DATA takes
        self.sending = 0  # messages being received at this instant
        self.most_at_once = 0

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        self.transports.append(server.transport)
        session.host_name = hostname  # what the server does itself without this hook
        return responses

    async def handle_NOOP(self, server: Any, session: Any, envelope: Any, arg: str) -> str:
        self.noops += 1
        return self.noop_reply

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:
        self.quits += 1
        return "221 Bye"

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender_with:
            return self.refuse_sender_with
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_recipient and address == self.refuse_recipient[0]:
            return self.refuse_recipient[1]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sending += 1
        self.most_at_once = max(self.most_at_once, self.sending)
        await asyncio.sleep(self.data_delay)
        self.sending -= 1
        self.received.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def recipients(self) -> list[str]:
        return [str(m["To"]) for m in self.received]


@pytest.fixture
def relay() -> Iterator[tuple[Relaying, Controller]]:
    handler = Relaying()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller
    controller.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with service_store(database_url, "notifier") as pool:
        yield pool


def sender_for(
    pool: asyncpg.Pool, controller: Controller, connection: RelayConnection | None = None
) -> Sender:
    return Sender(
        pool,
        Relay("127.0.0.1", controller.port, "support@desk.example"),
        connections=[connection] if connection else (),
    )


def now() -> datetime:
    return datetime.now(UTC)


async def record(
    pool: asyncpg.Pool, recipients: Sequence[str], tickets: Sequence[uuid.UUID] = ()
) -> None:
    """One pending message to each of `recipients`, in this order (about the request of the
    same rank in `tickets`, or each about a request of its own)."""
    rows = []
    for n, recipient in enumerate(recipients):
        key = uuid.uuid4().hex
        rows.append(
            (
                f"{key}/{recipient}",
                key,
                str(tickets[n] if tickets else uuid.uuid4()),
                recipient,
                f"<{key}@desk.example>",
                f"[REQ-1001] Nouveau commentaire pour {recipient}",
                "Bonjour,\n\nLe correctif est déployé.\n",
            )
        )
    await pool.executemany(
        """INSERT INTO deliveries (delivery_key, event_id, ticket_id, recipient, message_id,
                                   subject, body)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        rows,
    )


async def statuses(pool: asyncpg.Pool) -> dict[str, tuple[str, int]]:
    rows = await pool.fetch("SELECT recipient, status, attempts FROM deliveries ORDER BY seq")
    return {row["recipient"]: (row["status"], row["attempts"]) for row in rows}


def people(n: int) -> list[str]:
    return [f"person{i}@acme.example" for i in range(1, n + 1)]


async def test_one_connection_carries_batch_after_batch(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    sender = sender_for(pool, controller)
    await record(pool, people(3))
    for _ in range(3):
        assert await sender.send_pending(now(), limit=1) == 1
    await record(pool, people(5)[3:])
    assert await sender.send_pending(now()) == 2
    assert handler.recipients() == people(5)
    assert (handler.connections, handler.quits, sender.connections[0].opened) == (1, 0, 1)
    assert set((await statuses(pool)).values()) == {("sent", 1)}


async def test_a_connection_the_relay_closed_while_idle_is_replaced_and_the_message_goes_out(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    sender = sender_for(pool, controller)
    await record(pool, people(1))
    assert await sender.send_pending(now()) == 1
    assert controller.loop is not None
    controller.loop.call_soon_threadsafe(handler.transports[0].close)  # the relay hangs up
    for _ in range(50):  # the client sees the end of the stream as soon as its loop runs
        await asyncio.sleep(0.02)
        if not sender.connections[0].is_open:
            break
    assert not sender.connections[0].is_open
    await record(pool, people(2)[1:])
    assert await sender.send_pending(now()) == 1
    assert handler.recipients() == people(2)
    assert handler.connections == 2
    assert set((await statuses(pool)).values()) == {("sent", 1)}  # no attempt was lost


async def test_a_connection_idle_for_a_while_is_checked_with_noop_and_replaced_if_it_fails(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    """The relay forgot the connection without closing it (it answers 421 to the NOOP): the
    sender opens another before the message, which goes out at its first attempt."""
    handler, controller = relay
    clock = [1000.0]
    connection = RelayConnection(
        "127.0.0.1", controller.port, 10.0, check_after=2.0, idle_close=30.0, clock=lambda: clock[0]
    )
    sender = sender_for(pool, controller, connection)
    await record(pool, people(1))
    assert await sender.send_pending(now()) == 1
    clock[0] += 1.0  # a short pause: reused as it is
    await record(pool, people(2)[1:])
    assert await sender.send_pending(now()) == 1
    assert (handler.noops, handler.connections) == (0, 1)
    clock[0] += 5.0  # a longer one: checked first, and still good
    await record(pool, people(3)[2:])
    assert await sender.send_pending(now()) == 1
    assert (handler.noops, handler.connections) == (1, 1)
    handler.noop_reply = "421 4.4.2 idle too long, closing"
    clock[0] += 5.0
    await record(pool, people(4)[3:])
    assert await sender.send_pending(now()) == 1
    assert (handler.noops, handler.connections) == (2, 2)
    assert handler.recipients() == people(4)
    assert set((await statuses(pool)).values()) == {("sent", 1)}


async def test_an_idle_connection_is_closed_with_quit_and_so_is_it_at_shutdown(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    clock = [1000.0]
    connection = RelayConnection(
        "127.0.0.1", controller.port, 10.0, idle_close=30.0, clock=lambda: clock[0]
    )
    sender = sender_for(pool, controller, connection)
    await record(pool, people(1))
    assert await sender.send_pending(now()) == 1
    clock[0] += 29.0
    assert await sender.send_pending(now()) == 0  # nothing due, not idle long enough
    assert connection.is_open and handler.quits == 0
    clock[0] += 1.0
    assert await sender.send_pending(now()) == 0
    assert not connection.is_open and handler.quits == 1
    await record(pool, people(2)[1:])
    assert await sender.send_pending(now()) == 1  # opened again when there is mail
    await sender.close()  # what the service does when it stops
    assert not connection.is_open and handler.quits == 2
    assert handler.connections == 2 and handler.recipients() == people(2)


async def test_a_connection_on_which_the_relay_refused_us_is_not_reused(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    sender = sender_for(pool, controller)
    await record(pool, people(1))
    handler.refuse_sender_with = "553 sender not allowed to relay"
    assert await sender.send_pending(now()) == 1
    assert not sender.connections[0].is_open
    handler.refuse_sender_with = None
    await record(pool, people(2)[1:])
    assert await sender.send_pending(now()) == 1
    assert handler.connections == 2 and handler.recipients() == people(2)[1:]
    assert await statuses(pool) == {
        "person1@acme.example": ("pending", 1),  # retried later, with backoff
        "person2@acme.example": ("sent", 1),
    }


class CountingMarks(Sender):
    """Records the size of each mark; the mark numbered `crash_at` (from 1) fails instead."""

    def __init__(self, *args: Any, crash_at: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.groups: list[int] = []
        self.crash_at = crash_at

    async def mark_sent(self, sent: Any, now: datetime) -> None:
        self.groups.append(len(sent))
        if len(self.groups) == self.crash_at:
            raise Crash
        await super().mark_sent(sent, now)


class Crash(Exception):
    pass


async def test_a_small_batch_is_marked_message_by_message(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    """A desk keeping up (or the start of a backlog): a crash re-sends at most the one message
    sent and not yet marked."""
    _, controller = relay
    await record(pool, people(delivery.MARK_ALONE))
    sender = CountingMarks(pool, Relay("127.0.0.1", controller.port, "support@desk.example"))
    assert await sender.send_pending(now()) == delivery.MARK_ALONE
    assert sender.groups == [1] * delivery.MARK_ALONE


async def test_a_backlog_is_marked_in_groups_and_a_refusal_leaves_only_its_row_pending(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "MARK_WITHIN", 60.0)  # marks by count only: no timing
    handler, controller = relay
    everyone = people(20)
    handler.refuse_recipient = (everyone[4], "451 4.3.0 mailbox busy, try later")
    await record(pool, everyone)
    sender = CountingMarks(pool, Relay("127.0.0.1", controller.port, "support@desk.example"))
    assert await sender.send_pending(now()) == 20
    assert delivery.MARK_ALONE == 8
    assert sender.groups == [1] * 8 + [2, 4, 5]  # eight alone, then twice as many: 19 rows
    assert handler.recipients() == everyone[:4] + everyone[5:]
    expected = dict.fromkeys(everyone, ("sent", 1)) | {everyone[4]: ("pending", 1)}
    assert await statuses(pool) == expected


async def test_a_crash_before_a_mark_resends_only_the_messages_sent_since_the_last_one(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "MARK_WITHIN", 60.0)
    handler, controller = relay
    everyone = people(20)
    await record(pool, everyone)
    smtp = Relay("127.0.0.1", controller.port, "support@desk.example")
    crashing = CountingMarks(pool, smtp, crash_at=9)
    with pytest.raises(Crash):
        await crashing.send_pending(now())
    assert crashing.groups == [1] * 8 + [2]  # the mark of the 9th and 10th messages failed
    assert handler.recipients() == everyone[:10]
    assert await statuses(pool) == dict.fromkeys(everyone[:8], ("sent", 1)) | dict.fromkeys(
        everyone[8:], ("pending", 0)
    )

    # the dead holder's rows are free at once: the rest goes out, the two unmarked again
    assert await Sender(pool, smtp).send_pending(now()) == 12
    assert handler.recipients() == everyone[:10] + everyone[8:]
    again = handler.received[10:12]
    assert [str(m["Message-ID"]) for m in again] == [
        str(m["Message-ID"]) for m in handler.received[8:10]
    ]
    assert set((await statuses(pool)).values()) == {("sent", 1)}


async def test_a_group_mark_tells_which_rows_another_sender_had_taken_over(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    _, controller = relay
    await record(pool, people(3))
    sender = sender_for(pool, controller)
    sender.holder = 111_111
    rows = await sender.claim(now(), 10)
    taken = rows[1]["delivery_key"]
    await pool.execute("UPDATE deliveries SET lease_holder = 222222 WHERE delivery_key = $1", taken)
    with capture_logs() as logs:
        await sender.mark_sent(rows, now())
    lost = [e["recipient"] for e in logs if e["event"] == "notification_sent_after_lease_lost"]
    sent = [e["recipient"] for e in logs if e["event"] == "notification_sent"]
    assert lost == [people(3)[1]]
    assert sent == people(3)
    assert set((await statuses(pool)).values()) == {("sent", 1)}


async def test_connections_share_a_batch_by_request_and_send_at_once_each_in_order(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    handler.data_delay = 0.01
    tickets = [uuid.UUID(int=n) for n in range(1, 41)]  # fixed: shared out the same every run
    rounds = 3
    await record(
        pool,
        [f"r{n}-{t}@acme.example" for n in range(rounds) for t in range(len(tickets))],
        tickets * rounds,
    )
    sender = Sender(pool, Relay("127.0.0.1", controller.port, "support@desk.example"), lanes=4)
    assert await sender.send_pending(now()) == rounds * len(tickets)
    assert handler.connections == 4 and handler.most_at_once > 1
    for t in range(len(tickets)):  # each request's messages in the order they were recorded
        got = [r for r in handler.recipients() if r.endswith(f"-{t}@acme.example")]
        assert got == [f"r{n}-{t}@acme.example" for n in range(rounds)]
    assert set((await statuses(pool)).values()) == {("sent", 1)}
    await sender.close()
    assert handler.quits == 4


async def test_a_connection_whose_mark_fails_stops_the_others_and_nothing_is_lost(
    pool: asyncpg.Pool, relay: tuple[Relaying, Controller]
) -> None:
    handler, controller = relay
    handler.data_delay = 0.005
    everyone = people(60)
    await record(pool, everyone)
    smtp = Relay("127.0.0.1", controller.port, "support@desk.example")
    crashing = CountingMarks(pool, smtp, crash_at=3, lanes=4)
    with pytest.raises(Crash):
        await crashing.send_pending(now())
    first = len(handler.received)
    assert first < len(everyone)  # the other connections stopped with it
    marked = [r for r, (status, _) in (await statuses(pool)).items() if status == "sent"]

    # the rest goes out with the next sender, and again only what was sent and not marked
    remaining = len(everyone) - len(marked)
    assert await Sender(pool, smtp, lanes=4).send_pending(now()) == remaining
    assert sorted(handler.recipients()) == sorted(
        handler.recipients()[:first] + [r for r in everyone if r not in marked]
    )
    assert set((await statuses(pool)).values()) == {("sent", 1)}
