"""A service started while PostgreSQL or Kafka is unreachable says what is missing and retries
with backoff (no crash loop, no silence); one started without what it needs to be safe (the keys
that verify identity tokens, a real survey secret in production) does not start at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
from identity_support import JWKS_FILE
from system import free_port

pytestmark = pytest.mark.integration


def start(service: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", service],
        env={
            **os.environ,
            "LOG_FORMAT": "json",
            "HTTP_PORT": str(free_port()),
            "IDENTITY_KEYS": str(JWKS_FILE),
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def lines_until(
    process: subprocess.Popen[str], event: str, count: int, timeout: float = 20.0
) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while len(found) < count and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith("{"):
            entry = json.loads(line)
            if entry["event"] == event:
                found.append(entry)
    return found


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()


def test_postgres_unreachable_is_named_and_retried(kafka_bootstrap: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/desk"
    process = start("intake", DATABASE_URL=url, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    try:
        retries = lines_until(process, "postgres_unreachable", 3)
        assert process.poll() is None, "the service must keep retrying, not exit"
    finally:
        stop(process)
    assert len(retries) == 3
    assert retries[0]["url"] == url
    assert [r["attempt"] for r in retries] == [1, 2, 3]
    assert float(retries[2]["retry_in_s"]) > float(retries[0]["retry_in_s"])  # backoff


def test_kafka_unreachable_is_named_and_retried(database_url: str) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    process = start(
        "notifier",
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        TOPIC_PREFIX=f"nowhere-{uuid.uuid4().hex[:6]}.",
    )
    try:
        retries = lines_until(process, "kafka_not_ready", 2)
        assert process.poll() is None
    finally:
        stop(process)
    assert len(retries) == 2
    assert retries[0]["bootstrap"] == bootstrap
    assert "broker unreachable" in str(retries[0]["problem"])


def test_missing_topics_are_named(database_url: str, kafka_bootstrap: str) -> None:
    prefix = f"missing-{uuid.uuid4().hex[:6]}."
    process = start(
        "notifier",
        DATABASE_URL=database_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        TOPIC_PREFIX=prefix,
    )
    try:
        retries = lines_until(process, "kafka_not_ready", 1)
    finally:
        stop(process)
    assert retries and f"{prefix}ticket-events" in str(retries[0]["problem"])


def test_a_part_that_dies_stops_the_service_with_an_error(
    database_url: str, kafka_bootstrap: str
) -> None:
    import socket

    with socket.socket() as taken:  # the HTTP port is already in use: the server cannot start
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        process = start(
            "intake",
            DATABASE_URL=database_url,
            KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
            HTTP_PORT=port,
        )
        try:
            died = lines_until(process, "service_part_died", 1, timeout=60)
            code = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                stop(process)
    assert died and died[0]["task"] == "http-server"
    assert code == 1


@pytest.mark.parametrize("service", ["intake", "workflow", "sla", "notifier"])
def test_production_refuses_the_development_survey_secret(service: str) -> None:
    """Before touching a server (none is reachable here): a clear line, exit 2."""
    env = {k: v for k, v in os.environ.items() if k != "SURVEY_SECRET"}
    env |= {
        "LOG_FORMAT": "json",
        "IDENTITY_KEYS": str(JWKS_FILE),
        "DESK_ENV": "production",
        "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (refused,) = [line for line in lines if line["event"] == "service_not_started"]
    assert "refused with DESK_ENV=production" in refused["reason"]
    assert not any(line["event"] == "postgres_unreachable" for line in lines)


@pytest.mark.parametrize("service", ["intake", "workflow", "sla"])
def test_a_service_that_verifies_identity_refuses_to_start_without_its_keys(service: str) -> None:
    """Without IDENTITY_KEYS it could believe no caller: a clear line, exit 2, before it
    touches a server (none is reachable here)."""
    env = {k: v for k, v in os.environ.items() if k != "IDENTITY_KEYS"}
    env |= {
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
    }
    done = subprocess.run(
        [sys.executable, "-m", service], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    (refused,) = [line for line in lines if line["event"] == "service_not_started"]
    assert "IDENTITY_KEYS is not set" in refused["reason"]
    assert refused["service"] == service
    assert not any(line["event"] == "postgres_unreachable" for line in lines)
