"""deploy/local/create_topics.py on the real broker: a topic that already exists is brought to
its spec (e.g. an older `max.message.bytes`), each change reported, its other own settings kept."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from create_topics import ensure_topics

from desk_contracts.topics import MAX_MESSAGE_BYTES, TopicSpec

pytestmark = pytest.mark.integration


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    yield client
    await client.close()


async def settings_of(admin: AIOKafkaAdminClient, topic: str) -> dict[str, str]:
    [response] = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, topic, None)]
    )
    [resource] = response.to_object()["resources"]
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def test_an_existing_topic_is_brought_to_its_spec_and_the_change_reported(
    admin: AIOKafkaAdminClient, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"old-topic-{uuid.uuid4().hex[:10]}"
    older = {"max.message.bytes": "500000", "segment.ms": "3600000"}  # made before the spec
    await admin.create_topics([NewTopic(name, 2, 1, topic_configs=older)])
    spec = TopicSpec(name, partitions=2)
    assert spec.config["max.message.bytes"] == str(MAX_MESSAGE_BYTES)
    retention = (await settings_of(admin, name))["retention.ms"]  # the broker's default

    changes = await ensure_topics(kafka_bootstrap, (spec,), timeout=30)

    assert changes == {
        name: {
            "max.message.bytes": ("500000", str(MAX_MESSAGE_BYTES)),
            "retention.ms": (retention, "-1"),
        }
    }
    reported = capsys.readouterr().err
    assert f"changed {name}: max.message.bytes 500000 -> {MAX_MESSAGE_BYTES}" in reported
    assert f"changed {name}: retention.ms {retention} -> -1" in reported
    now = await settings_of(admin, name)
    assert {k: now[k] for k in spec.config} == spec.config
    assert now["segment.ms"] == "3600000"  # the topic's own setting the spec does not name

    assert await ensure_topics(kafka_bootstrap, (spec,), timeout=30) == {}  # nothing left
    assert "changed" not in capsys.readouterr().err
