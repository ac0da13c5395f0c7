"""Which failures of a handler make the consumer consume the record again (not dead-letter it)."""

from __future__ import annotations

import asyncpg
import pytest

from desk_eventstore.store import ConcurrencyError
from desk_platform.consumer import PoisonMessage, RetryLater, retry_later


@pytest.mark.parametrize(
    "error",
    [
        RetryLater("the ticket's creation has not arrived yet"),
        ConcurrencyError("t-1", 3, 4),
        asyncpg.InternalClientError(
            "cannot switch to state 14; another operation (2) is in progress"
        ),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_consumed_again(error: BaseException) -> None:
    assert retry_later(error)


@pytest.mark.parametrize(
    "error",
    [
        PoisonMessage("invalid TicketCreated payload"),
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        TypeError("a handler bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_dead_lettered(error: BaseException) -> None:
    assert not retry_later(error)
