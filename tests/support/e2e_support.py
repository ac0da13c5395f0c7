"""End-to-end helpers: the whole system on a fresh database and fresh (prefixed) topics, so a
run sees no other run's requests; waiting for something to happen; reading the SMTP sink."""

from __future__ import annotations

import asyncio
import email
import email.policy
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from system import System

from desk_contracts.topics import TOPICS


async def _fresh_database(database_url: str, name: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url.rsplit("/", 1)[0] + "/" + name


async def _fresh_topics(kafka_bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(prefix + t.name, t.partitions, 1, topic_configs=t.config) for t in TOPICS]
        )
    finally:
        await admin.close()


@contextmanager
def isolated_system(
    database_url: str, kafka_bootstrap: str, state: Path, name: str, **options: Any
) -> Iterator[System]:
    """The SMTP sink, the gateway and the four services as processes; stopped cleanly after."""
    name = f"{name}_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(_fresh_database(database_url, name))
    asyncio.run(_fresh_topics(kafka_bootstrap, name + "."))
    running = System(url, kafka_bootstrap, state, topic_prefix=name + ".", **options)
    running.start()
    try:
        running.wait_ready()
        yield running
    finally:
        codes = running.stop()
        assert all(code == 0 for code in codes.values()), f"unclean stop: {codes}"


def eventually(probe: Any, timeout: float = 30.0) -> Any:
    """The first truthy result of `probe()`, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        time.sleep(0.2)


def mails(folder: Path) -> list[EmailMessage]:
    """Every message the SMTP sink kept, oldest first."""
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]
