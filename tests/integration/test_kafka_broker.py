"""The Kafka broker (deploy/local/infra.sh or KAFKA_BOOTSTRAP_SERVERS) does what the design needs.

With aiokafka, against the real broker: an idempotent producer (acks=all) writes keyed records to a
fresh multi-partition topic; a consumer group of two members shares the partitions; offsets are
committed; after both members stop and the group is restarted, it resumes exactly after the
committed offsets: nothing is read twice and nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

pytestmark = pytest.mark.integration

PARTITIONS = 4
KEYS = [f"ticket-{i}" for i in range(24)]


async def _create_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        deadline = time.monotonic() + 30
        while True:
            [topic] = await admin.describe_topics([name])
            parts = topic.get("partitions", [])
            if len(parts) == PARTITIONS and all(p["leader"] >= 0 for p in parts):
                return
            assert time.monotonic() < deadline, f"topic {name} has no leaders: {topic}"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


async def _delete_topic(bootstrap: str, name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, phase: str, count: int) -> dict[str, int]:
    """Send `count` keyed records; return key -> partition as acknowledged by the broker."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        futures = []
        for seq in range(count):
            key = KEYS[seq % len(KEYS)]
            value = f"{phase}:{key}:{seq}".encode()
            futures.append((key, await producer.send(topic, value, key=key.encode())))
        partition_of: dict[str, int] = {}
        for key, future in futures:
            meta = await future
            assert meta.offset >= 0
            # the same key always lands in the same partition (per-ticket order relies on it)
            assert partition_of.setdefault(key, meta.partition) == meta.partition
        return partition_of
    finally:
        await producer.stop()


def _consumer(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        heartbeat_interval_ms=300,
        session_timeout_ms=10_000,
        metadata_max_age_ms=5_000,
    )


Received = dict[str, list[tuple[int, int, str, str]]]  # member -> [(partition, offset, key, value)]


async def _poll(members: dict[str, AIOKafkaConsumer], into: Received) -> None:
    for name, consumer in members.items():
        batches = await consumer.getmany(timeout_ms=100)
        for tp, records in batches.items():
            for r in records:
                into[name].append((tp.partition, r.offset, r.key.decode(), r.value.decode()))


async def _wait_shared(members: dict[str, AIOKafkaConsumer], into: Received) -> None:
    """Poll until every member holds a non-empty, disjoint share covering all partitions."""
    deadline = time.monotonic() + 60
    while True:
        await _poll(members, into)
        shares = {name: {tp.partition for tp in c.assignment()} for name, c in members.items()}
        covered = set().union(*shares.values())
        disjoint = sum(len(s) for s in shares.values()) == len(covered)
        if all(shares.values()) and disjoint and covered == set(range(PARTITIONS)):
            return
        assert time.monotonic() < deadline, f"group never shared the partitions: {shares}"


async def _consume_until(
    members: dict[str, AIOKafkaConsumer], into: Received, total: int, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while sum(len(v) for v in into.values()) < total:
        assert time.monotonic() < deadline, (
            f"got {sum(len(v) for v in into.values())} of {total} records"
        )
        await _poll(members, into)
    # and nothing more arrives afterwards
    for _ in range(5):
        await _poll(members, into)


def _check_phase(
    into: Received,
    members: dict[str, AIOKafkaConsumer],
    phase: str,
    count: int,
    partition_of: dict[str, int],
) -> None:
    values = [v for recs in into.values() for (_, _, _, v) in recs]
    assert len(values) == count, f"{phase}: {len(values)} records for {count} sent"
    assert len(set(values)) == count, f"{phase}: duplicates"
    assert {v.split(":")[0] for v in values} == {phase}, "records of another phase were read"
    per_key: dict[str, list[int]] = defaultdict(list)
    for name, recs in into.items():
        share = {tp.partition for tp in members[name].assignment()}
        for partition, _, key, value in recs:
            assert partition in share, f"{name} read partition {partition} outside its share"
            assert partition == partition_of[key]
            per_key[key].append(int(value.rsplit(":", 1)[1]))
    for key, seqs in per_key.items():
        assert seqs == sorted(seqs), f"order broken for {key}: {seqs}"


async def _commit_and_check(
    members: dict[str, AIOKafkaConsumer], topic: str, expected_end: dict[int, int]
) -> None:
    for consumer in members.values():
        await consumer.commit()
    reader = next(iter(members.values()))
    for partition, end in expected_end.items():
        committed = await reader.committed(TopicPartition(topic, partition))
        assert committed == end, f"partition {partition}: committed {committed}, end {end}"


async def _end_offsets(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = await consumer.end_offsets(tps)
    return {tp.partition: offset for tp, offset in ends.items()}


async def test_idempotent_producer_consumer_group_and_resume_after_commit(
    kafka_bootstrap: str,
) -> None:
    topic = f"test-broker-{uuid.uuid4().hex[:10]}"
    group = f"test-group-{uuid.uuid4().hex[:10]}"
    await _create_topic(kafka_bootstrap, topic)
    members: dict[str, AIOKafkaConsumer] = {}
    try:
        # Phase 1: two members share the partitions, read everything once, commit.
        members = {"a": _consumer(kafka_bootstrap, topic, group)}
        await members["a"].start()
        members["b"] = _consumer(kafka_bootstrap, topic, group)
        await members["b"].start()
        received: Received = defaultdict(list)
        await _wait_shared(members, received)

        first = 480
        partition_of = await _produce(kafka_bootstrap, topic, "one", first)
        assert len(set(partition_of.values())) > 1, "keys should spread over the partitions"
        await _consume_until(members, received, first)
        _check_phase(received, members, "one", first, partition_of)
        assert all(received[name] for name in members), "each member should get records"

        ends = await _end_offsets(members["a"], topic)
        # idempotent producer: exactly one copy of each record in the log
        assert sum(ends.values()) == first, f"log holds {sum(ends.values())} records for {first}"
        await _commit_and_check(members, topic, ends)
        for consumer in members.values():
            await consumer.stop()

        # Phase 2: more records while nobody consumes; the restarted group resumes after the
        # committed offsets: only the new records, each once, none missing.
        second = 240
        partition_of_2 = await _produce(kafka_bootstrap, topic, "two", second)
        assert partition_of_2.items() <= partition_of.items(), "key -> partition must be stable"

        members = {
            "a2": _consumer(kafka_bootstrap, topic, group),
            "b2": _consumer(kafka_bootstrap, topic, group),
        }
        for consumer in members.values():
            await consumer.start()
        resumed: Received = defaultdict(list)
        await _wait_shared(members, resumed)
        await _consume_until(members, resumed, second)
        _check_phase(resumed, members, "two", second, partition_of)
        first_offsets = {(p, o) for recs in received.values() for (p, o, _, _) in recs}
        second_offsets = {(p, o) for recs in resumed.values() for (p, o, _, _) in recs}
        assert not first_offsets & second_offsets, "re-read records below the committed offset"
        for partition, end in ends.items():
            offs = sorted(o for (p, o) in second_offsets if p == partition)
            if offs:
                assert offs[0] == end, f"partition {partition} resumed at {offs[0]}, not {end}"
        ends_2 = await _end_offsets(members["a2"], topic)
        assert sum(ends_2.values()) == first + second
        await _commit_and_check(members, topic, ends_2)
    finally:
        for consumer in members.values():
            await consumer.stop()
        await _delete_topic(kafka_bootstrap, topic)
