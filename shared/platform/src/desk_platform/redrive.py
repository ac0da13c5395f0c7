"""Re-drive a parked ticket: list every dead letter, and send a ticket's dead-lettered events back.

    uv run python -m desk_platform.redrive list --service sla
    uv run python -m desk_platform.redrive run --service sla --group sla.ticket-events \\
        --ticket 3f0c...            # after fixing what made its first event fail

`list` shows every unresolved dead letter of the service (from its `dead_letters` register):
which consumer group (or relay) set which event of which ticket aside, why, how many times, and
whether the ticket is parked behind it; then the parked tickets. A dead letter is resolved once
its event is applied (re-driven, or a retry that passed after an outage) or dropped.

`run` reads the group's dead-letter topic and publishes that ticket's parked events again to the
topic they came from (original key, value and headers), in their original order. The ticket
stays parked meanwhile: the consumer applies a re-sent event only when it is the first one
parked, and releases it as it applies it, so nothing that arrives in between can overtake it
(it queues behind, and the next round sends it too). Rounds repeat until nothing is parked, or
until a round makes no progress (the cause is still there: the first event fails again and says
why). A parked record that is not even a CloudEvent cannot be applied by anyone: it is released
and left in the dead-letter topic, reported as dropped. Every other consumer of the topic sees
the copies as duplicates and skips them (inbox). Uses DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from desk_contracts.envelope import Envelope, MalformedEnvelope
from desk_contracts.topics import dead_letter
from desk_eventstore import tracecontext
from desk_eventstore.dead_letters import resolve, unresolved
from desk_eventstore.parking import parked_events, parked_streams, release
from desk_eventstore.relay import idempotent_producer
from desk_platform.deadletter import ORIGIN_GROUP, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC


@dataclass(frozen=True)
class Redriven:
    ticket: str
    origin_topic: str
    sent: int  # records published again (over all rounds)
    dropped: int  # parked records that are not CloudEvents: released, left in the DLT
    still_parked: list[str]  # event ids still parked when it stopped (empty: done)


def _headers(record: Any) -> dict[str, bytes]:
    return {name: value for name, value in (record.headers or ())}


async def dead_letters_of(bootstrap: str, origin_topic: str, group: str, ticket: str) -> list[Any]:
    """The ticket's records dead-lettered by `group`, in their original order."""
    topic = dead_letter(origin_topic)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        for _ in range(50):  # without a group, every partition is assigned once metadata arrives
            partitions = list(consumer.assignment())
            if partitions:
                break
            await asyncio.sleep(0.1)
        else:
            raise SystemExit(f"no dead-letter topic {topic!r}")
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    headers = _headers(record)
                    if (
                        record.key == ticket.encode()
                        and headers.get(ORIGIN_GROUP) == group.encode()
                    ):
                        found.append(record)
    finally:
        await consumer.stop()
    order: dict[tuple[int, int], Any] = {}
    for record in found:  # a record dead-lettered twice is sent once
        headers = _headers(record)
        order.setdefault((int(headers[ORIGIN_PARTITION]), int(headers[ORIGIN_OFFSET])), record)
    return [order[key] for key in sorted(order)]


async def redrive(
    database_url: str,
    schema: str,
    bootstrap: str,
    group: str,
    ticket: str,
    *,
    round_timeout: float = 30.0,
    max_rounds: int = 10,
) -> Redriven:
    service, _, origin_topic = group.partition(".")
    if not origin_topic:
        raise SystemExit(f"{group!r} is not a consumer group of ours (<service>.<topic>)")
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    producer = idempotent_producer(bootstrap, f"redrive-{service}")
    await producer.start()
    sent = dropped = 0
    try:
        parked = await parked_events(conn, group, ticket)
        for _ in range(max_rounds):
            if not parked:
                break
            seen: set[str] = set()  # an event dead-lettered several times is sent once
            for record in await dead_letters_of(bootstrap, origin_topic, group, ticket):
                event_id = _event_id(record)
                if event_id is None:  # not a CloudEvent: nobody can ever apply it
                    where = _origin(record)
                    if where in parked:
                        await release(conn, group, ticket, where)
                        await resolve(conn, group, where, "dropped by a re-drive: not a CloudEvent")
                        dropped += 1
                    continue
                if event_id in parked and event_id not in seen:
                    seen.add(event_id)
                    headers = [
                        (n, v)
                        for n, v in tracecontext.without_trace(record.headers or ())
                        if not n.startswith("dlt_")
                    ]
                    await producer.send_and_wait(
                        _headers(record)[ORIGIN_TOPIC].decode(),
                        record.value,
                        key=record.key,
                        headers=headers,
                    )
                    sent += 1
            before, parked = parked, await _settled(conn, group, ticket, round_timeout)
            if parked and parked[0] == before[0]:  # the first one failed again: stop here
                break
    finally:
        await producer.stop()
        await conn.close()
    return Redriven(ticket, origin_topic, sent, dropped, parked)


def _event_id(record: Any) -> str | None:
    try:
        return Envelope.from_kafka(record.key, record.value, record.headers).id
    except MalformedEnvelope:
        return None


def _origin(record: Any) -> str:
    headers = _headers(record)
    return (
        f"{headers[ORIGIN_TOPIC].decode()}/{headers[ORIGIN_PARTITION].decode()}"
        f"@{headers[ORIGIN_OFFSET].decode()}"
    )


async def _settled(conn: asyncpg.Connection, group: str, ticket: str, timeout: float) -> list[str]:
    """The parked events once the consumer stopped releasing them (or `timeout` passed)."""
    parked = await parked_events(conn, group, ticket)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while parked and time.monotonic() < deadline and time.monotonic() - quiet_since < 3.0:
        await asyncio.sleep(0.2)
        now = await parked_events(conn, group, ticket)
        if now != parked:
            parked, quiet_since = now, time.monotonic()
    return parked


async def listing(database_url: str, schema: str) -> list[str]:
    """The lines `list` prints: unresolved dead letters, then parked tickets."""
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        letters = await unresolved(conn)
        streams = await parked_streams(conn)
    finally:
        await conn.close()
    lines = [] if letters else ["no dead letters"]
    for row in letters:
        where = "parked" if row["parked"] else "not parked"
        lines.append(
            f"{row['origin']}  ticket {row['stream_id'] or '-'}  event {row['event_id']} ({where}, "
            f"{row['times']}x, last {row['dead_lettered_at']:%Y-%m-%d %H:%M:%S}): {row['reason']}"
        )
    if not streams:
        lines.append("nothing parked")
    for row in streams:
        lines.append(
            f"{row['consumer']}  ticket {row['stream_id']}: {row['events']} event(s) parked "
            f"since {row['since']:%Y-%m-%d %H:%M:%S}; first: {row['first_reason']}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["list", "run"])
    parser.add_argument("--service", required=True, help="its schema: intake, workflow, sla…")
    parser.add_argument("--group", help="consumer group, e.g. sla.ticket-events")
    parser.add_argument("--ticket", help="the ticket id whose events to re-drive")
    args = parser.parse_args()
    url = os.environ["DATABASE_URL"]
    if args.action == "list":
        print("\n".join(asyncio.run(listing(url, args.service))))
        return
    if not args.group or not args.ticket:
        parser.error("run needs --group and --ticket")
    done = asyncio.run(
        redrive(url, args.service, os.environ["KAFKA_BOOTSTRAP_SERVERS"], args.group, args.ticket)
    )
    print(
        f"ticket {done.ticket}: {done.sent} event(s) sent again to {done.origin_topic}, "
        f"{done.dropped} unreadable record(s) dropped"
    )
    if done.still_parked:
        print(
            f"still parked behind {done.still_parked[0]} ({len(done.still_parked)} event(s)): "
            "see `list` for the reason; fix it and run again"
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
