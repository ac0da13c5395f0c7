"""Replay a topic from its first record: for analysts (exports, their own read models) and for
rebuilding a projection. Topics keep ticket events forever, so position 0 is the beginning.

    uv run python -m desk_platform.replay ticket-events sla-events --out events.jsonl

Each line of the export is one CloudEvent as JSON (attributes, `data`, and the Kafka position);
progress goes to stderr. Reads without a consumer group: nobody's offsets move. Uses
KAFKA_BOOTSTRAP_SERVERS (and TOPIC_PREFIX when set).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from desk_contracts.envelope import Envelope, MalformedEnvelope


@dataclass(frozen=True)
class Replayed:
    topic: str
    partition: int
    offset: int
    envelope: Envelope


Progress = Callable[[int, int], None]


async def replay(
    bootstrap: str, topics: list[str], progress: Progress | None = None
) -> AsyncIterator[Replayed | tuple[str, int, int, str]]:
    """Every record of `topics` from the beginning up to their end at the start of the replay,
    in order within each partition. Malformed records come as (topic, partition, offset,
    reason) so an export can count them instead of stopping."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = await _all_partitions(consumer, topics, bootstrap)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        begin = await consumer.beginning_offsets(partitions)
        total = sum(end[tp] - begin[tp] for tp in partitions)
        done = 0
        remaining = {tp for tp in partitions if end[tp] > begin[tp]}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= end[tp]:
                        remaining.discard(tp)
                        break
                    done += 1
                    try:
                        envelope = Envelope.from_kafka(record.key, record.value, record.headers)
                        yield Replayed(tp.topic, tp.partition, record.offset, envelope)
                    except MalformedEnvelope as error:
                        yield (tp.topic, tp.partition, record.offset, str(error))
            for tp in list(remaining):
                if await consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
            if progress:
                progress(done, total)
    finally:
        await consumer.stop()


async def _all_partitions(
    consumer: AIOKafkaConsumer, topics: list[str], bootstrap: str
) -> list[TopicPartition]:
    """Without a group, a subscribed consumer is assigned every partition once it has the
    topics' metadata."""
    for _ in range(100):
        assigned = consumer.assignment()
        if {tp.topic for tp in assigned} == set(topics):
            return sorted(assigned)
        await asyncio.sleep(0.1)
    missing = set(topics) - {tp.topic for tp in consumer.assignment()}
    raise SystemExit(f"no topic {', '.join(sorted(missing))} at {bootstrap}")


def as_json(item: Replayed) -> dict[str, Any]:
    e = item.envelope
    return {
        "id": e.id,
        "type": e.type,
        "source": e.source,
        "subject": e.subject,
        "time": e.time.isoformat(),
        "dataschema": e.dataschema,
        **e.extensions,
        "data": dict(e.data),
        "kafka": {"topic": item.topic, "partition": item.partition, "offset": item.offset},
    }


async def export(bootstrap: str, topics: list[str], out: TextIO, err: TextIO) -> tuple[int, int]:
    """Write every record as a JSON line; returns (exported, malformed)."""
    exported = malformed = 0
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        rate = done / max(time.monotonic() - started, 1e-6)
        print(f"\r{done:,}/{total:,} records ({rate:,.0f}/s)", end="", file=err, flush=True)

    async for item in replay(bootstrap, topics, progress):
        if isinstance(item, Replayed):
            out.write(json.dumps(as_json(item), ensure_ascii=False) + "\n")
            exported += 1
        else:
            malformed += 1
            print(f"\nmalformed {item[0]}[{item[1]}]@{item[2]}: {item[3]}", file=err)
    print(f"\nexported {exported:,} events, {malformed:,} malformed", file=err)
    return exported, malformed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("topics", nargs="+", help="e.g. ticket-events sla-events")
    parser.add_argument("--out", type=Path, help="JSON lines file (default: stdout)")
    args = parser.parse_args()
    prefix = os.environ.get("TOPIC_PREFIX", "")
    topics = [prefix + t for t in args.topics]
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    if args.out:
        with args.out.open("w", encoding="utf-8") as out:
            asyncio.run(export(bootstrap, topics, out, sys.stderr))
    else:
        asyncio.run(export(bootstrap, topics, sys.stdout, sys.stderr))


if __name__ == "__main__":
    main()
