"""Sign-in throttling (pure): repeated failures lock a key for a while.

Failures are counted per key: the address as typed (whether or not an account has it, so the
answers never tell an attacker which addresses exist) and the client's network address. After
`MAX_FAILURES` failures within `WINDOW`, the key is locked for `LOCK`; a success clears the
address's count. A locked key is refused before the password is even checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(minutes=15)
LOCK = timedelta(minutes=15)
MAX_FAILURES = {"address": 5, "client": 50}


@dataclass(frozen=True)
class Failures:
    """A key's failures: how many since `first_at`, and the lock they led to."""

    failures: int
    first_at: datetime
    locked_until: datetime | None = None


def locked_for(state: Failures | None, now: datetime) -> timedelta | None:
    """How long the key stays locked (None: it is not)."""
    if state is None or state.locked_until is None or state.locked_until <= now:
        return None
    return state.locked_until - now


def after_failure(state: Failures | None, kind: str, now: datetime) -> Failures:
    """The key's failures after one more, locked when it reaches its kind's maximum."""
    if state is None or now - state.first_at > WINDOW:
        state = Failures(0, now)
    failures = state.failures + 1
    locked = now + LOCK if failures >= MAX_FAILURES[kind] else state.locked_until
    return Failures(failures, state.first_at, locked)
