"""Waiting for Kafka at start: a clear log line naming what is missing, retry with backoff."""

from __future__ import annotations

import asyncio

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)


async def wait_for_kafka(
    bootstrap_servers: str,
    topics: tuple[str, ...] = (),
    *,
    attempts: int = 30,
    first_delay: float = 0.5,
    max_delay: float = 10.0,
) -> None:
    """Return once the broker answers and `topics` exist; raise after `attempts`."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=5000)
        problem = ""
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [topic for topic in topics if topic not in existing]
            if not missing:
                return
            problem = f"topics missing: {', '.join(missing)} (run deploy/local/infra.sh start)"
        except (KafkaError, OSError) as error:
            problem = f"broker unreachable: {error or type(error).__name__}"
        finally:
            await admin.close()
        if attempt == attempts:
            log.error("kafka_not_ready_giving_up", bootstrap=bootstrap_servers, problem=problem)
            raise RuntimeError(f"Kafka at {bootstrap_servers} not ready: {problem}")
        log.warning(
            "kafka_not_ready",
            bootstrap=bootstrap_servers,
            problem=problem,
            attempt=attempt,
            retry_in_s=delay,
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)
