"""Re-drive a parked ticket: list what is parked, and send a ticket's dead-lettered events back.

    uv run python -m desk_platform.redrive list --service sla
    uv run python -m desk_platform.redrive run --service sla --group sla.ticket-events \\
        --ticket 3f0c...            # after fixing what made its first event fail

`run` reads the group's dead-letter topic, takes that ticket's records in their original order,
clears the ticket's parking, and publishes them again to the topic they came from (original
key, value and headers). Every consumer of that topic applies each event once (inbox), so the
copies other groups see again are skipped; this group now applies them in order, or parks the
ticket again with the new reason. Uses DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer

from desk_contracts.topics import dead_letter
from desk_eventstore.parking import parked_streams, unpark
from desk_eventstore.relay import idempotent_producer
from desk_platform.deadletter import ORIGIN_GROUP, ORIGIN_OFFSET, ORIGIN_PARTITION, ORIGIN_TOPIC


@dataclass(frozen=True)
class Redriven:
    ticket: str
    origin_topic: str
    events: int
    unparked: int


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
    database_url: str, schema: str, bootstrap: str, group: str, ticket: str
) -> Redriven:
    service, _, origin_topic = group.partition(".")
    if not origin_topic:
        raise SystemExit(f"{group!r} is not a consumer group of ours (<service>.<topic>)")
    records = await dead_letters_of(bootstrap, origin_topic, group, ticket)
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        unparked = await unpark(conn, group, ticket)
    finally:
        await conn.close()
    producer = idempotent_producer(bootstrap, f"redrive-{service}")
    await producer.start()
    try:
        for record in records:
            headers = [(n, v) for n, v in (record.headers or ()) if not n.startswith("dlt_")]
            await producer.send_and_wait(
                _headers(record)[ORIGIN_TOPIC].decode(),
                record.value,
                key=record.key,
                headers=headers,
            )
    finally:
        await producer.stop()
    return Redriven(ticket, origin_topic, len(records), unparked)


async def _list(database_url: str, schema: str) -> None:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": schema})
    try:
        rows = await parked_streams(conn)
    finally:
        await conn.close()
    if not rows:
        print("nothing parked")
    for row in rows:
        print(
            f"{row['consumer']}  ticket {row['stream_id']}: {row['events']} event(s) parked "
            f"since {row['since']:%Y-%m-%d %H:%M:%S}; first: {row['first_reason']}"
        )


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
        asyncio.run(_list(url, args.service))
        return
    if not args.group or not args.ticket:
        parser.error("run needs --group and --ticket")
    done = asyncio.run(
        redrive(url, args.service, os.environ["KAFKA_BOOTSTRAP_SERVERS"], args.group, args.ticket)
    )
    print(
        f"ticket {done.ticket}: {done.events} event(s) sent again to {done.origin_topic}, "
        f"{done.unparked} unparked"
    )


if __name__ == "__main__":
    main()
