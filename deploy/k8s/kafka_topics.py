"""The Strimzi `KafkaTopic` resources of `desk_contracts.topics`, written to base/kafka-topics.yaml.

    uv run python deploy/k8s/kafka_topics.py           # rewrite the file from the contracts
    uv run python deploy/k8s/kafka_topics.py --check   # exit 1 when the file differs from them

One resource per topic of `desk_contracts.topics.TOPICS` (the main topics and their `.dlt`
twins): its partitions and its whole config (retention.ms, cleanup.policy, max.message.bytes)
as the contracts say, `spec.topicName` explicit (so a prefix or a rename never changes the
topic by accident), on the Strimzi cluster `desk-kafka`. The replication factor is a deployment
choice (3 here; the staging overlay patches it), not a contract.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from desk_contracts.topics import TOPICS, TopicSpec

CLUSTER = "desk-kafka"  # the Strimzi `Kafka` resource the topic operator reconciles them on
REPLICAS = 3
OUTPUT = Path(__file__).resolve().parent / "base" / "kafka-topics.yaml"
HEADER = (
    "# GENERATED from desk_contracts.topics by deploy/k8s/kafka_topics.py: do not edit by hand;\n"
    "# run `uv run python deploy/k8s/kafka_topics.py` after changing the contracts.\n"
)


def kafka_topic(spec: TopicSpec) -> dict[str, Any]:
    """The `KafkaTopic` (kafka.strimzi.io/v1beta2) of one topic spec."""
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {
            "name": spec.name,
            "labels": {"strimzi.io/cluster": CLUSTER, "app.kubernetes.io/component": "topics"},
        },
        "spec": {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": REPLICAS,
            "config": dict(spec.config),
        },
    }


def document() -> str:
    """The YAML file holding every topic's resource, in the contracts' order."""
    body = "".join("---\n" + yaml.safe_dump(kafka_topic(spec), sort_keys=False) for spec in TOPICS)
    return HEADER + body


def main(argv: list[str] | None = None) -> int:
    """Write the file (or, with --check, say whether it is up to date); the exit status."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args(argv)
    wanted = document()
    if args.check:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != wanted:
            print(f"{OUTPUT} differs from desk_contracts.topics: regenerate it", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
