"""Each class of failure, told apart in one place: what passes later, what is refused for good."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import errors as kafka_errors

from desk_eventstore.failures import describe, is_record_refused, is_transient


@pytest.mark.parametrize(
    "error",
    [
        # connection lost or refused
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.InterfaceError("cannot perform operation: connection is closed"),
        # a connection a crash left mid-operation (was taken as permanent: two dead letters)
        asyncpg.InternalClientError(
            "cannot switch to state 14; another operation (2) is in progress"
        ),
        # server shutting down, restarting, starting up
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another server"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        # conflicts that a retry resolves
        asyncpg.DeadlockDetectedError("deadlock detected"),
        asyncpg.SerializationError("could not serialize access"),
        # the broker away, or between leaders
        kafka_errors.KafkaConnectionError("Unable to bootstrap from [('127.0.0.1', 9092)]"),
        kafka_errors.RequestTimedOutError(),
        kafka_errors.NotLeaderForPartitionError(),
        kafka_errors.KafkaTimeoutError(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_passing_outage_is_transient(error: BaseException) -> None:
    assert is_transient(error)
    assert not is_record_refused(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        asyncpg.InvalidTextRepresentationError("invalid input syntax for type json"),
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.CheckViolationError("new row violates check constraint"),
        asyncpg.StringDataRightTruncationError("value too long for type character varying(5)"),
        asyncpg.UndefinedTableError('relation "nope" does not exist'),  # a bug: not retried
        ValueError("a handler bug"),
        KeyError("ticket_id"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_data_refused_is_permanent(error: BaseException) -> None:
    assert not is_transient(error)
    assert not is_record_refused(error)


@pytest.mark.parametrize(
    "error",
    [
        kafka_errors.MessageSizeTooLargeError("The message is 1200512 bytes when serialized"),
        kafka_errors.RecordListTooLargeError(),
        kafka_errors.CorruptRecordException(),
    ],
    ids=lambda error: type(error).__name__,
)
def test_a_record_kafka_refuses_is_refused_for_good_not_the_broker(error: BaseException) -> None:
    assert is_record_refused(error)
    assert not is_transient(error)


def test_a_description_names_the_class_and_is_bounded() -> None:
    assert describe(TimeoutError()) == "TimeoutError"
    assert describe(ValueError("x" * 5000)).startswith("ValueError: xxx")
    assert len(describe(ValueError("x" * 5000))) == 1000
