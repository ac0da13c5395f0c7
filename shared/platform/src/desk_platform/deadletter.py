"""Dead-letter topic: the original record, byte for byte, with its origin and the error (only
its description, `dlt_original_bytes` and no value, when it would no longer fit)."""

from __future__ import annotations

from typing import Any

import structlog
from aiokafka import AIOKafkaProducer

from desk_contracts.topics import dead_letter
from desk_eventstore import tracecontext
from desk_eventstore.dead_letters import (
    ERROR,
    ORIGIN_GROUP,
    ORIGIN_OFFSET,
    ORIGIN_PARTITION,
    ORIGIN_TOPIC,
    ORIGINAL_BYTES,
)
from desk_eventstore.failures import is_record_refused

log = structlog.get_logger(__name__)

__all__ = [
    "ERROR",
    "ORIGIN_GROUP",
    "ORIGIN_OFFSET",
    "ORIGIN_PARTITION",
    "ORIGIN_TOPIC",
    "DeadLetters",
]


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def send(self, record: Any, group_id: str, reason: str) -> None:
        headers = tracecontext.without_trace(record.headers or ())
        headers += [
            (ORIGIN_TOPIC, record.topic.encode()),
            (ORIGIN_PARTITION, str(record.partition).encode()),
            (ORIGIN_OFFSET, str(record.offset).encode()),
            (ORIGIN_GROUP, group_id.encode()),
            (ERROR, reason.encode()),
        ]
        try:
            await self.producer.send_and_wait(
                dead_letter(record.topic), record.value, key=record.key, headers=list(headers)
            )
        except Exception as error:
            if not is_record_refused(error):
                raise
            # the record with our headers no longer fits: keep its description, not its value
            # (still on the original topic, at the origin offset)
            size = str(len(record.value or b"")).encode()
            await self.producer.send_and_wait(
                dead_letter(record.topic), b"", key=record.key,
                headers=[*headers, (ORIGINAL_BYTES, size)],
            )  # fmt: skip
        log.warning(
            "dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=reason,
        )
