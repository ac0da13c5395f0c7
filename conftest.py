"""Session fixtures for tests that need the real servers (PostgreSQL, Kafka).

The servers are chosen once per session by `tests/support/server_selection.py`: DATABASE_URL and
KAFKA_BOOTSTRAP_SERVERS when both are set, else PostgreSQL and Kafka containers where a Docker
engine answers, else the private servers of `deploy/local/infra.sh start`
(`DESK_TEST_SERVERS=env|containers|local` forces one). No integration test falls back to a fake.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from server_selection import session_servers


def _announce(config: pytest.Config, message: str) -> None:
    """`message` on the terminal, past the output capture (once per session)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if capture is None or reporter is None:
        print(message, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(message)


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS of this session's servers, also put in os.environ
    for the processes the tests start; containers are removed when the session ends."""
    with session_servers(dict(os.environ), lambda m: _announce(request.config, m)) as env:
        os.environ.update(env)
        yield env


@pytest.fixture(scope="session")
def database_url(infra: dict[str, str]) -> str:
    return infra["DATABASE_URL"]


@pytest.fixture(scope="session")
def kafka_bootstrap(infra: dict[str, str]) -> str:
    return infra["KAFKA_BOOTSTRAP_SERVERS"]


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
