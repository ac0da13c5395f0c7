"""Session fixtures for tests that need the real servers (PostgreSQL, Kafka).

`scripts/test.sh` starts them with `deploy/local/infra.sh start` and exports DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS; a bare `pytest` run starts them here the same way when the variables
are missing, so no integration test ever falls back to a fake.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def _infra_env() -> dict[str, str]:
    wanted = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    if all(os.environ.get(name) for name in wanted):
        return {name: os.environ[name] for name in wanted}
    out = subprocess.run(
        ["bash", str(ROOT / "deploy/local/infra.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    env = {}
    for line in out.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() in wanted:
            env[name.strip()] = value.strip()
    missing = [name for name in wanted if name not in env]
    if missing:
        raise RuntimeError(f"deploy/local/infra.sh start did not report {missing}: {out}")
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def infra() -> dict[str, str]:
    return _infra_env()


@pytest.fixture(scope="session")
def database_url() -> str:
    return os.environ.get("DATABASE_URL") or _infra_env()["DATABASE_URL"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or _infra_env()["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture
async def new_topic(kafka_bootstrap: str):  # type: ignore[no-untyped-def]
    """Factory of fresh topics (6 partitions by default) on the real broker, for one test."""
    import uuid

    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()

    async def make(prefix: str = "test", partitions: int = 6) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        await admin.create_topics([NewTopic(name, partitions, 1)])
        return name

    yield make
    await admin.close()
