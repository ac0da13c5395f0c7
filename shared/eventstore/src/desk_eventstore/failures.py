"""What a failure is: the one place that tells a passing outage from a refusal for good.

Transient (retry the same work later, it may pass): the connection to PostgreSQL or Kafka was
lost or refused, the server is shutting down or restarting, a timeout, too many connections, a
deadlock or serialization conflict, a broker without leader or replicas for a while, and an
asyncpg connection left mid-operation by a crash ("cannot switch to state …; another operation
is in progress": asyncpg's InternalClientError). Everything else is permanent for the record
it concerns: the data was refused (invalid, too large, violating a constraint) and would be
refused again. A record-level refusal by Kafka (too large, corrupt) concerns one record only;
other Kafka errors concern the producer (retry). Refused data (`is_data_refused`: an event the
store refuses, too large or holding a NUL, or a value PostgreSQL refuses) is refused again
whenever it is offered: an edge says so for good (a 4xx, an SMTP 5xx), never "try later".
"""

from __future__ import annotations

import asyncpg
from aiokafka import errors as kafka_errors

from desk_eventstore.store import EventRefused

TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, unreachable; TimeoutError is one too
    asyncpg.PostgresConnectionError,  # connection lost or refused (class 08)
    asyncpg.InterfaceError,  # connection closed under us, pool closing
    asyncpg.InternalClientError,  # a connection left mid-operation (another one in progress)
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.OperatorInterventionError,  # server shutting down, restarting, query cancelled
    asyncpg.InsufficientResourcesError,  # disk full, out of memory: an operator fixes it
)

RECORD_REFUSED: tuple[type[BaseException], ...] = (
    kafka_errors.MessageSizeTooLargeError,  # over max.message.bytes (or max_request_size)
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
)


def is_transient(error: BaseException) -> bool:
    """True when the same work may pass later (connection, restart, timeout, conflict)."""
    if isinstance(error, RECORD_REFUSED):
        return False
    if isinstance(error, kafka_errors.KafkaError):
        return True  # broker trouble: every record would fail alike, so none is to blame
    return isinstance(error, TRANSIENT)


def is_record_refused(error: BaseException) -> bool:
    """True when Kafka refuses this one record for good (too large, corrupt): set it aside."""
    return isinstance(error, RECORD_REFUSED)


def is_data_refused(error: BaseException) -> bool:
    """True when the data itself is refused, for good: an event the store refuses
    (`EventRefused`: too large, a NUL, a lone surrogate, ...) or a value PostgreSQL refuses
    (class 22, data exception). Offering the same data again would be refused again."""
    return isinstance(error, EventRefused | asyncpg.DataError)


def describe(error: BaseException) -> str:
    """`Type: message`, bounded, for logs and dead-letter reasons."""
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text[:1000]
