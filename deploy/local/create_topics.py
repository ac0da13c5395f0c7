"""Create the project's Kafka topics idempotently from `desk_contracts.topics.TOPICS`.

    uv run python deploy/local/create_topics.py [--bootstrap HOST:PORT] [--timeout S]

The bootstrap address defaults to $KAFKA_BOOTSTRAP_SERVERS. Works against the local broker started
by deploy/local/infra.sh, the docker-compose broker, or any external cluster. Replication factor:
$KAFKA_REPLICATION_FACTOR, else min(3, number of brokers). Existing topics are brought to their
spec: a topic with fewer partitions is grown, and a setting of the spec that differs (e.g. an
older `max.message.bytes`) is changed, each change reported (`changed <topic>: <key> <old> ->
<new>`); the topic's other settings of its own are kept. A change the cluster refuses is
reported as a WARNING and the start goes on. All output goes to stderr; exit code 0 means every
topic exists with a leader.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from desk_contracts.topics import TOPICS, TopicSpec

TOPIC_ALREADY_EXISTS = 36


def say(msg: str) -> None:
    print(f"[create_topics] {msg}", file=sys.stderr, flush=True)


async def connect(bootstrap: str, timeout: float) -> AIOKafkaAdminClient:
    deadline = time.monotonic() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        try:
            await admin.start()
            await admin.describe_cluster()
            return admin
        except Exception as exc:
            await admin.close()
            if time.monotonic() >= deadline:
                raise SystemExit(
                    f"[create_topics] Kafka at {bootstrap} did not answer within {timeout:.0f}s: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(0.5)


def _errors(response: object) -> list[tuple[str, int, str | None]]:
    obj = response.to_object()  # type: ignore[attr-defined]
    out = []
    for item in obj.get("topic_errors", obj.get("topics", [])):
        name = item.get("topic") or item.get("name")
        out.append((name, item.get("error_code", 0), item.get("error_message")))
    return out


async def ensure_topics(
    bootstrap: str, specs: tuple[TopicSpec, ...], timeout: float
) -> dict[str, dict[str, tuple[str | None, str]]]:
    """Create the missing topics, grow and wait for them, bring their settings to the spec;
    returns the settings changed (see `align_configs`)."""
    admin = await connect(bootstrap, timeout)
    changes: dict[str, dict[str, tuple[str | None, str]]] = {}
    try:
        cluster = await admin.describe_cluster()
        brokers = len(cluster.get("brokers", [])) or 1
        replication = int(os.environ.get("KAFKA_REPLICATION_FACTOR") or min(3, brokers))
        existing = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(s.name, s.partitions, replication, topic_configs=dict(s.config))
                    for s in missing
                ],
                timeout_ms=int(timeout * 1000),
            )
            for name, code, message in _errors(response):
                if code == 0:
                    say(f"created {name}")
                elif code == TOPIC_ALREADY_EXISTS:
                    say(f"{name} already exists (created concurrently)")
                else:
                    raise SystemExit(
                        f"[create_topics] creating {name} failed: error {code} {message or ''}"
                    )
        await check_topics(admin, specs, timeout)
        try:
            changes = await align_configs(admin, specs)
        except Exception as exc:  # the topics exist and have leaders: the start goes on
            say(f"WARNING could not bring the topics' settings to the spec: "
                f"{type(exc).__name__}: {exc}")  # fmt: skip
    finally:
        await admin.close()
    say("ready: " + ", ".join(f"{s.name}({s.partitions})" for s in specs))
    return changes


async def check_topics(
    admin: AIOKafkaAdminClient, specs: tuple[TopicSpec, ...], timeout: float
) -> None:
    """Wait until every topic has all its partitions with a leader; grow partitions if needed."""
    by_name = {s.name: s for s in specs}
    deadline = time.monotonic() + timeout
    grown = False
    while True:
        described = await admin.describe_topics(list(by_name))
        not_ready = []
        to_grow = {}
        for topic in described:
            name = topic["topic"]
            spec = by_name[name]
            partitions = topic.get("partitions", [])
            if (
                topic.get("error_code", 0) != 0
                or not partitions
                or any(p.get("leader", -1) < 0 for p in partitions)
            ):
                not_ready.append(name)
            elif len(partitions) < spec.partitions:
                to_grow[name] = NewPartitions(total_count=spec.partitions)
        if to_grow and not grown:
            say(f"growing partitions of {sorted(to_grow)}")
            await admin.create_partitions(to_grow)
            grown = True
            continue
        if not not_ready:
            break
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"[create_topics] topics without leaders after {timeout:.0f}s: {not_ready}"
            )
        await asyncio.sleep(0.3)


# DescribeConfigs' config_source of a setting made on the topic itself (not a default)
TOPIC_CONFIG_SOURCE = 1


async def align_configs(
    admin: AIOKafkaAdminClient, specs: tuple[TopicSpec, ...]
) -> dict[str, dict[str, tuple[str | None, str]]]:
    """Change the topics' settings that differ from their spec; returns, per topic changed, each
    key's (old, new) value. AlterConfigs replaces a topic's own settings as a whole, so the ones
    the spec does not name are sent again as they are."""
    by_name = {s.name: s for s in specs}
    changes: dict[str, dict[str, tuple[str | None, str]]] = {}
    requests: list[ConfigResource] = []
    described = [ConfigResource(ConfigResourceType.TOPIC, s.name, None) for s in specs]
    for response in await admin.describe_configs(described):
        for resource in response.to_object().get("resources", []):
            name = resource.get("resource_name")
            if resource.get("error_code", 0):
                say(f"WARNING {name}: cannot read its settings: {resource.get('error_message')}")
                continue
            actual: dict[str, str | None] = {}
            own: dict[str, str] = {}
            for entry in resource.get("config_entries", []):
                key, value = entry["config_names"], entry["config_value"]
                actual[key] = value
                source = entry.get("config_source")
                set_here = (
                    source == TOPIC_CONFIG_SOURCE
                    if source is not None
                    else not entry.get("is_default", True)
                )
                if set_here and value is not None:
                    own[key] = value
            wanted = by_name[name].config
            differing = {k: (actual.get(k), v) for k, v in wanted.items() if actual.get(k) != v}
            if differing:
                changes[name] = differing
                configs = {**own, **wanted}
                requests.append(ConfigResource(ConfigResourceType.TOPIC, name, configs))
    if not requests:
        return {}
    for response in await admin.alter_configs(requests):
        for name, code, message in _alter_errors(response):
            if code:
                say(f"WARNING {name}: its settings were not changed: error {code} {message or ''}")
                changes.pop(name, None)
    for name, differing in changes.items():
        for key, (old, new) in differing.items():
            say(f"changed {name}: {key} {old} -> {new}")
    return changes


def _alter_errors(response: object) -> list[tuple[str, int, str | None]]:
    obj = response.to_object()  # type: ignore[attr-defined]
    return [
        (r.get("resource_name"), r.get("error_code", 0), r.get("error_message"))
        for r in obj.get("resources", [])
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # retries are reported by us
    if not args.bootstrap:
        parser.error("no --bootstrap and KAFKA_BOOTSTRAP_SERVERS is not set")
    asyncio.run(ensure_topics(args.bootstrap, TOPICS, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())
